"""Turn what a phone user really types into something the engine can match.

Owners type in Devanagari or Latin script, mix Hindi and English ("haan ji"), send Devanagari
digits, emoji and very long messages. Everything here is a pure function and never raises on
any string.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

MAX_TEXT = 300
"""Longest free-text answer kept (names, district); longer input is refused politely."""

_YES = {
    "yes", "y", "yeah", "yep", "ok", "okay", "haan", "haa", "han", "ha", "hn", "hanji",
    "haanji", "ji", "jee", "ji haan", "ji haa", "ji han", "haan ji", "han ji", "sure",
    "हाँ", "हां", "हा", "जी", "जी हाँ", "जी हां", "हाँ जी", "हां जी", "हाँजी", "हांजी", "ठीक है",
    "👍", "✅",
}
_NO = {
    "no", "n", "nope", "nahi", "nahin", "nai", "nhi", "nahi ji", "na", "naa", "ji nahi",
    "ji nahin", "नहीं", "नही", "ना", "जी नहीं", "नहीं जी", "👎", "❌",
}


def latin_digits(text: str) -> str:
    """Replace every Unicode decimal digit (Devanagari २, Tamil ௨, Bengali ২ …) with 0–9."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if not ch.isascii() and unicodedata.decimal(ch, None) is not None else ch for ch in text)


# Characters that show as nothing although Unicode does not file them as format or space: the
# Hangul fillers (a favourite for "blank" names), the braille blank, the combining grapheme joiner,
# the Khmer inherent vowels and the Mongolian free variation selectors.
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f")


def clean_text(text: str) -> str:
    """Drop control, zero-width and other invisible characters, fold runs of white space, trim.

    Zero-width joiners are kept inside words where Devanagari uses them, but never alone.
    """
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\n\t\r":
            out.append(" ")
        elif cat == "Cc" or (cat == "Cf" and ch not in "\u200c\u200d") or ch in INVISIBLE:
            continue
        else:
            out.append(ch)
    folded = " ".join("".join(out).split())
    return folded.strip("\u200c\u200d ")


def fold(text: str) -> str:
    """A key for loose matching: NFC, case-folded, digits Latin, punctuation and spaces removed."""
    text = unicodedata.normalize("NFC", latin_digits(clean_text(text))).casefold()
    # Nukta and chandrabindu vary in how people type Hindi (हां / हाँ, ख़रीदार / खरीदार).
    text = text.replace("\u093c", "").replace("\u0901", "\u0902")
    key = "".join(ch for ch in text if ch.isalnum() or unicodedata.category(ch).startswith("M"))
    # Marks with no letter or digit to sit on (a lone variation selector, stray matras) say nothing.
    return key if any(ch.isalnum() for ch in key) else ""


_FOLDED_YES = {fold(w) for w in _YES}
_FOLDED_NO = {fold(w) for w in _NO}


def parse_yes_no(text: str) -> bool | None:
    """``True`` for yes, ``False`` for no, ``None`` when it is neither (Hindi, Hinglish, English)."""
    key = fold(text)
    if not key:
        cleaned = clean_text(text)
        if cleaned in _YES:
            return True
        if cleaned in _NO:
            return False
        return None
    if key in _FOLDED_YES:
        return True
    if key in _FOLDED_NO:
        return False
    return None


def parse_number(text: str) -> int | None:
    """A whole number typed alone ("3", "३", " 3. ") or ``None``."""
    cleaned = latin_digits(clean_text(text)).strip(" .)")
    if cleaned.isascii() and cleaned.isdigit() and len(cleaned) <= 6:
        return int(cleaned)
    return None


def parse_number_list(text: str) -> list[int] | None:
    """Numbers typed as a list ("1, 3", "1 3", "१,३", "2 aur 4"); ``None`` if there are none.

    Anything other than digits, separators and the words and/aur/or is refused, so that a
    sentence containing a number is not read as a choice.
    """
    cleaned = latin_digits(clean_text(text)).lower()
    cleaned = re.sub(r"\b(and|aur|or|tatha|और|व)\b", " ", cleaned)
    if not cleaned.strip() or re.search(r"[^0-9,;/&.+\s]", cleaned):
        return None
    numbers = [int(n) for n in re.findall(r"[0-9]{1,3}", cleaned)]
    if not numbers:
        return None
    return list(dict.fromkeys(numbers))


def match_option(text: str, labels: Sequence[Iterable[str]]) -> int | None:
    """Index of the option the user meant, or ``None``.

    ``labels[i]`` holds every way of naming option ``i`` (its labels in each language and any
    aliases). The user may type the option's number (1-based), or a label in either language,
    case- and space-insensitively; a unique prefix of at least three characters also counts.
    """
    number = parse_number(text)
    if number is not None:
        return number - 1 if 1 <= number <= len(labels) else None
    key = fold(text)
    if not key:
        return None
    folded = [{fold(name) for name in names} - {""} for names in labels]
    exact = [i for i, names in enumerate(folded) if key in names]
    if len(exact) == 1:
        return exact[0]
    if len(key) >= 3:
        starts = [i for i, names in enumerate(folded) if any(n.startswith(key) for n in names)]
        if len(starts) == 1:
            return starts[0]
    return None


def edit_distance(a: str, b: str, limit: int) -> int:
    """Edits (insert, delete, change, swap two neighbours) from ``a`` to ``b``; ``limit + 1`` once past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before, row = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, row = row, current
    return row[-1]


def closest_option(text: str, labels: Sequence[Iterable[str]]) -> int | None:
    """The option a misspelt name most likely means ("uttar pardesh", "utter pradesh", "उत्तर पर्देश").

    Only for a name of at least four letters, within one edit per five letters of the option's
    name, and only when no other option is as close: the caller asks the user to confirm it.
    """
    key = fold(text)
    if len(key) < 4 or key.isdigit():
        return None
    best: dict[int, int] = {}
    for index, names in enumerate(labels):
        for name in {fold(n) for n in names} - {""}:
            if len(name) < 4:
                continue
            limit = max(1, len(name) // 5)
            distance = edit_distance(key, name, limit)
            if distance <= limit:
                best[index] = min(best.get(index, distance), distance)
    if not best:
        return None
    ranked = sorted(best.items(), key=lambda item: item[1])
    if len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        return None
    return ranked[0][0]


def parse_indian_mobile(text: str) -> str | None:
    """A valid Indian mobile number as ``+91XXXXXXXXXX``, or ``None``.

    Accepts +91 / 91 / 0 prefixes, spaces, dashes and Devanagari digits; the number proper is
    ten digits starting with 6–9.
    """
    cleaned = latin_digits(clean_text(text))
    if re.search(r"[^0-9\s+\-().]", cleaned):
        return None
    digits = re.sub(r"[^0-9]", "", cleaned)
    if len(digits) == 12 and digits.startswith("91"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    if len(digits) == 10 and digits[0] in "6789":
        return "+91" + digits
    return None


def mask_phone(phone: str) -> str:
    """``+91 98xxxxxx21``: enough to recognise a number in a log, not enough to call it."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 6:
        return "x" * len(digits)
    national = digits[-10:]
    return f"+91 {national[:2]}{'x' * (len(national) - 4)}{national[-2:]}"
