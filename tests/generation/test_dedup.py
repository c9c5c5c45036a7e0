from hiwar.generation.config import DedupConfig
from hiwar.generation.dedup import dedup_key, find_duplicates
from hiwar.generation.validate import DUPLICATE, NEAR_DUPLICATE


def conv(*texts: str) -> list[dict[str, str]]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]


BASE = conv(
    "ما أشهر الأطباق التقليدية في المغرب وكيف تقدم للضيوف في المناسبات؟",
    "من أشهرها الكسكس الذي يقدم يوم الجمعة والطاجين باللحم والبرقوق والحريرة في رمضان والبسطيلة في الأعراس "
    "وتقدم كلها مع الشاي بالنعناع والخبز البلدي الساخن في جو عائلي دافئ يجمع الأقارب والجيران",
)


def test_exact_key_ignores_diacritics_hamza_and_punctuation():
    variant = conv(
        "ما اشهر الاطباق التقليديه في المغرب وكيف تُقدَّم للضيوف في المناسبات",
        BASE[1]["content"].replace("الشاي", "الشـاي") + ".",
    )
    assert dedup_key(BASE) == dedup_key(variant)
    assert dedup_key(BASE) != dedup_key(conv(BASE[0]["content"], "جواب مختلف تماما"))


def test_first_id_is_kept_for_exact_and_near_copies():
    near = conv(BASE[0]["content"], BASE[1]["content"].replace("الخبز البلدي الساخن", "الخبز الساخن"))
    other = conv("كيف أستعد لمقابلة عمل في شركة كبيرة؟", "ابحث عن الشركة وتدرب على الأسئلة الشائعة وارتد ملابس مناسبة.")
    items = {
        "b": near,
        "a": BASE,
        "c": conv("ما اشهر الاطباق التقليديه في المغرب وكيف تقدم للضيوف في المناسبات", BASE[1]["content"]),
        "d": other,
    }
    dropped = find_duplicates(items, DedupConfig(threshold=0.7))
    assert dropped["c"].reason == DUPLICATE and dropped["c"].of == "a"
    assert dropped["b"].reason == NEAR_DUPLICATE and dropped["b"].of == "a"
    assert "a" not in dropped and "d" not in dropped


def test_near_dedup_can_be_switched_off():
    near = conv(BASE[0]["content"], BASE[1]["content"].replace("الخبز البلدي الساخن", "الخبز الساخن"))
    assert find_duplicates({"a": BASE, "b": near}, DedupConfig(near=False)) == {}
