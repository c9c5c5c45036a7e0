from hiwar.generation.arabic import arabic_letter_ratio, latin_ratio, latin_words, normalize, strip_diacritics


def test_normalize_folds_alef_hamza_yaa_taa_marbuta_and_drops_marks():
    assert normalize("أإآٱ") == "اااا"
    assert normalize("مستشفى") == "مستشفي"
    assert normalize("مدرسة") == "مدرسه"
    assert normalize("سُؤَالٌ") == "سوال"
    assert normalize("جميـــل") == "جميل"
    assert normalize("شاطئ") == "شاطي"
    assert normalize("مرحبًا، كيف الحال؟") == "مرحبا كيف الحال"
    assert normalize("عام ٢٠٢٤") == "عام 2024"


def test_strip_diacritics_keeps_letters():
    assert strip_diacritics("مُحَمَّدٌ") == "محمد"


def test_ratios_count_letters_only():
    assert arabic_letter_ratio("مرحبا 123 !!") == 1.0
    assert arabic_letter_ratio("") == 0.0
    assert latin_ratio("مرحبا hello") == 5 / 10
    assert latin_words("زرت Paris و x امس") == ["Paris"]
