"""Arabic text helpers: normalised keys for dedup, script ratios, Latin leakage.

Normalisation is for comparison keys only; stored text is never changed.
"""

from __future__ import annotations

import re
import unicodedata

# Harakat, tanween, shadda, sukun, dagger alef, Quranic marks.
_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")
_TATWEEL = "\u0640"
_FOLD = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",  # alef with hamza/madda/wasla -> bare alef
        "ى": "ي",
        "ئ": "ي",  # alef maqsura and yaa with hamza -> yaa
        "ؤ": "و",  # waw with hamza -> waw
        "ة": "ه",  # taa marbuta -> haa
        "ء": "",  # lone hamza dropped
    }
)
_NON_WORD = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACES = re.compile(r"\s+")
_ARABIC_LETTER = re.compile("[\u0621-\u063a\u0641-\u064a\u0671-\u06d3\u06fa-\u06ff\u0750-\u077f]")
_LATIN_LETTER = re.compile("[A-Za-z\u00c0-\u024f]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]{2,}")
_ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def strip_diacritics(text: str) -> str:
    """Remove harakat and tatweel."""
    return _DIACRITICS.sub("", text).replace(_TATWEEL, "")


def normalize(text: str) -> str:
    """A comparison key: NFKC, diacritics and tatweel removed, alef/hamza/yaa/taa marbuta folded, digits as
    ASCII, punctuation dropped, Latin lower-cased, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = strip_diacritics(text).translate(_FOLD).translate(_ARABIC_DIGITS).lower()
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def arabic_letters(text: str) -> int:
    """Number of Arabic-script letters."""
    return len(_ARABIC_LETTER.findall(text))


def latin_letters(text: str) -> int:
    """Number of Latin letters (ASCII and Latin-1/Extended-A/B)."""
    return len(_LATIN_LETTER.findall(text))


def arabic_letter_ratio(text: str) -> float:
    """Arabic-script letters over all letters (0.0 when the text has no letter)."""
    letters = sum(1 for ch in text if ch.isalpha())
    return arabic_letters(text) / letters if letters else 0.0


def latin_ratio(text: str) -> float:
    """Latin letters over all letters (Latin leakage; Arabizi is Latin too)."""
    letters = sum(1 for ch in text if ch.isalpha())
    return latin_letters(text) / letters if letters else 0.0


def latin_words(text: str) -> list[str]:
    """Latin words of two or more letters, in order."""
    return _LATIN_WORD.findall(text)


def words(text: str) -> list[str]:
    """Words of the normalised text."""
    return normalize(text).split()
