"""The input normaliser: what phone users really type, read the way they meant it."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.normalize import (
    clean_text,
    closest_option,
    edit_distance,
    fold,
    latin_digits,
    mask_phone,
    match_option,
    parse_indian_mobile,
    parse_number,
    parse_number_list,
    parse_yes_no,
)

STATES = [
    ["Uttar Pradesh", "उत्तर प्रदेश", "UP"],
    ["Bihar", "बिहार"],
    ["Tamil Nadu", "तमिलनाडु", "TN"],
    ["Telangana", "तेलंगाना"],
]
PHONE_RE = re.compile(r"^\+91[6-9][0-9]{9}$")  # ASCII digits only: \d would also match ౯ or ９


# ----------------------------------------------------------------- digits and numbers
def test_devanagari_digits_become_latin():
    assert latin_digits("२") == "2"
    assert latin_digits("९८७६५४३२१०") == "9876543210"
    assert latin_digits("कक्षा ५") == "कक्षा 5"


@pytest.mark.parametrize("typed, number", [("3", 3), ("३", 3), (" 3. ", 3), ("3)", 3), ("१२", 12)])
def test_a_number_typed_alone_is_read(typed, number):
    assert parse_number(typed) == number


@pytest.mark.parametrize("typed", ["3 bags", "abc", "", "  ", "1,3", "-2", "1234567"])
def test_text_that_is_not_one_number_is_not_a_number(typed):
    assert parse_number(typed) is None


def test_devanagari_digit_picks_the_option_with_that_number():
    assert match_option("३", [["a"], ["b"], ["c"]]) == 2
    assert match_option("१", [["a"], ["b"], ["c"]]) == 0


def test_an_option_number_outside_the_list_matches_nothing():
    assert match_option("4", [["a"], ["b"], ["c"]]) is None
    assert match_option("0", [["a"], ["b"], ["c"]]) is None


@pytest.mark.parametrize(
    "typed, numbers",
    [("1, 3", [1, 3]), ("1 3", [1, 3]), ("१,३", [1, 3]), ("2 aur 4", [2, 4]), ("2 and 4", [2, 4]), ("2 और 4", [2, 4]),
     ("3,3,1", [3, 1]), ("5", [5])],
)
def test_number_lists(typed, numbers):
    assert parse_number_list(typed) == numbers


@pytest.mark.parametrize("typed", ["I want 2 and 4", "", "aur", "Europe", "2 kilo"])
def test_a_sentence_with_numbers_is_not_a_number_list(typed):
    assert parse_number_list(typed) is None


# ----------------------------------------------------------------- yes / no
@pytest.mark.parametrize("typed", ["haan", "han", "ha", "ji", "yes", "y", "हाँ", "हां", "जी", "Haan Ji", "  YES ", "Ji haan", "ok"])
def test_yes_in_hindi_hinglish_and_english(typed):
    assert parse_yes_no(typed) is True


@pytest.mark.parametrize("typed", ["nahi", "nahin", "na", "no", "नहीं", "NO", " Nahi "])
def test_no_in_hindi_hinglish_and_english(typed):
    assert parse_yes_no(typed) is False


@pytest.mark.parametrize("typed", ["maybe", "", "   ", "kal batata hoon", "yes no", "3"])
def test_neither_yes_nor_no(typed):
    assert parse_yes_no(typed) is None


# ----------------------------------------------------------------- options
@pytest.mark.parametrize(
    "typed, index",
    [
        ("Uttar Pradesh", 0),
        ("uttar pradesh", 0),
        ("  UTTAR   PRADESH ", 0),
        ("uttarpradesh", 0),
        ("उत्तर प्रदेश", 0),
        ("बिहार", 1),
        ("bihar", 1),
        ("tn", 2),
        ("2", 1),
        ("४", 3),
        ("tamil", 2),  # a unique prefix of at least three letters
    ],
)
def test_option_matched_by_number_or_label_in_either_language(typed, index):
    assert match_option(typed, STATES) == index


@pytest.mark.parametrize("typed", ["te", "t", "Kerala", "", "🙏"])
def test_ambiguous_short_or_unknown_text_matches_no_option(typed):
    # "te" is too short for a prefix; "t" prefixes both Tamil Nadu and Telangana.
    assert match_option(typed, STATES) is None


def test_ambiguous_prefix_matches_nothing():
    assert match_option("tel", [["Telangana"], ["Telecom"]]) is None


# ----------------------------------------------------------------- mobile numbers
@pytest.mark.parametrize(
    "typed",
    [
        "9876543210",
        "+91 98765 43210",
        "+919876543210",
        "91 9876543210",
        "09876543210",
        "098765 43210",
        "98765-43210",
        "९८७६५४३२१०",
        "+९१ ९८७६५ ४३२१०",
        " 9876 543 210 ",
    ],
)
def test_indian_mobile_numbers_are_normalised(typed):
    assert parse_indian_mobile(typed) == "+919876543210"


@pytest.mark.parametrize("first", "6789")
def test_mobile_numbers_start_with_6_to_9(first):
    assert parse_indian_mobile(first + "123456789") == "+91" + first + "123456789"


@pytest.mark.parametrize(
    "typed",
    [
        "5876543210",  # starts with 5
        "987654321",  # nine digits
        "98765432101",  # eleven digits, no 0 prefix
        "98765abc10",  # letters
        "call 9876543210",
        "",
        "+44 7911 123456",
        "0 5876543210",
    ],
)
def test_not_an_indian_mobile(typed):
    assert parse_indian_mobile(typed) is None


def test_mobile_in_any_indian_script_digits_is_stored_in_latin_digits():
    # Telugu, Kannada, Odia, Bengali, Gujarati, fullwidth, and a mix of scripts.
    for typed in ("౯౮౭౬౫౪౩౨౧౦", "೯೮೭೬೫೪೩೨೧೦", "୯୮୭୬୫୪୩୨୧୦", "৯৮৭৬৫৪৩২১০", "૯૮૭૬૫૪૩૨૧૦", "９８７６５４３２１０", "9౮७6543210"):
        assert parse_indian_mobile(typed) == "+919876543210", typed


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_latin_digits_leaves_no_other_decimal_digit(text):
    out = latin_digits(text)
    assert not any(unicodedata.decimal(ch, None) is not None and not ch.isascii() for ch in out)
    assert len(out) == len(text)


@pytest.mark.parametrize("phone", ["+919876543221", "9876543221", "+91 98765 43221"])
def test_mask_phone(phone):
    assert mask_phone(phone) == "+91 98xxxxxx21"


def test_mask_phone_hides_the_middle_digits():
    masked = mask_phone("+917012345678")
    assert masked == "+91 70xxxxxx78"
    assert "123456" not in masked


# ----------------------------------------------------------------- clean_text
def test_clean_text_drops_control_and_zero_width_characters_and_folds_spaces():
    assert clean_text("  Asha\x00 \u200b Devi\n\t\u202e ") == "Asha Devi"


def test_clean_text_keeps_joiners_inside_devanagari_words():
    word = "क्\u200dष"
    assert clean_text(word) == word
    assert clean_text("\u200d" + word + "\u200c ") == word


def test_fold_ignores_case_spaces_punctuation_nukta_and_chandrabindu():
    assert fold("Uttar  Pradesh!") == fold("uttarpradesh")
    assert fold("हाँ") == fold("हां")
    assert fold("ख़रीदार") == fold("खरीदार")


# ----------------------------------------------------------------- properties
nasty_chars = st.sampled_from(
    ["\x00", "\x07", "\x1b", "\x7f", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202e", "\u2066", "\ufeff",
     "\n", "\r", "\t", "\u00a0", "\u2028", "🙏", "👍🏽", "👨‍👩‍👧", "९", "३", "ँ", "़", "हाँ", "+91", " ", "0"]
)
nasty_text = st.one_of(
    st.text(),
    st.lists(st.one_of(nasty_chars, st.text(max_size=3)), max_size=40).map("".join),
    st.text(min_size=1, max_size=5).map(lambda s: (s * (10_000 // len(s) + 1))[:10_000]),
)


@settings(max_examples=300, deadline=None)
@given(nasty_text)
def test_no_normaliser_raises_on_any_text(text):
    assert isinstance(clean_text(text), str)
    assert isinstance(fold(text), str)
    assert parse_yes_no(text) in (True, False, None)
    number = parse_number(text)
    assert number is None or number >= 0
    numbers = parse_number_list(text)
    assert numbers is None or (numbers and all(n >= 0 for n in numbers))
    index = match_option(text, STATES)
    assert index is None or 0 <= index < len(STATES)
    phone = parse_indian_mobile(text)
    assert phone is None or PHONE_RE.match(phone)
    assert isinstance(mask_phone(text), str)


def test_ten_thousand_characters_are_handled():
    long = ("हाँ ९ " * 1667)[:9_999] + "x"
    assert len(long) == 10_000, len(long)
    assert parse_yes_no(long) is None
    assert parse_indian_mobile(long) is None
    assert match_option(long, STATES) is None
    assert clean_text(long) == long


@settings(max_examples=300, deadline=None)
@given(nasty_text)
def test_clean_text_has_no_control_characters_and_is_idempotent(text):
    cleaned = clean_text(text)
    assert not any(unicodedata.category(ch) == "Cc" for ch in cleaned)
    assert not any(unicodedata.category(ch) == "Cf" and ch not in "\u200c\u200d" for ch in cleaned)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert clean_text(cleaned) == cleaned


digit_chars = st.sampled_from(list("0123456789०१२३४५६७८९"))
phone_like = st.lists(st.one_of(digit_chars, st.sampled_from([" ", "-", "+", "(", ")", "."])), min_size=8, max_size=18).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(phone_like, st.text()))
def test_parsed_mobile_is_always_plus91_and_ten_digits(text):
    phone = parse_indian_mobile(text)
    assert phone is None or PHONE_RE.match(phone)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from("6789"), st.lists(digit_chars, min_size=9, max_size=9).map("".join), st.sampled_from(["", "+91 ", "91", "0", "+९१"]))
def test_every_valid_mobile_in_any_spelling_is_accepted(first, rest, prefix):
    expected = "+91" + first + latin_digits(rest)
    assert parse_indian_mobile(prefix + first + rest) == expected


# ----------------------------------------------------------------- misspelt names
MISSPELT_NAMES = [["Uttar Pradesh", "उत्तर प्रदेश", "UP"], ["Uttarakhand", "उत्तराखंड"], ["Madhya Pradesh", "मध्य प्रदेश", "MP"],
          ["Andhra Pradesh", "आंध्र प्रदेश"], ["Goa", "गोवा"], ["Gujarat", "गुजरात", "Gujrat"]]


@pytest.mark.parametrize("typed, meant", [
    ("uttar pardesh", 0), ("utter pradesh", 0), ("Uttar Pradesh ", 0), ("उत्तर पर्देश", 0), ("उतर प्रदेश", 0),
    ("madhya pardesh", 2), ("gujraat", 5), ("uttrakhand", 1),
])
def test_a_misspelt_name_finds_the_option_meant(typed, meant):
    assert closest_option(typed, MISSPELT_NAMES) == meant


@pytest.mark.parametrize("typed", ["pradesh", "xyz", "Go", "12", "", "bihar", "pradesh pradesh", "a" * 4000])
def test_no_guess_when_nothing_is_close_or_it_is_ambiguous(typed):
    assert closest_option(typed, MISSPELT_NAMES) is None


def test_edit_distance_counts_a_swap_of_neighbours_as_one_edit():
    assert edit_distance("pardesh", "pradesh", 3) == 1
    assert edit_distance("abc", "abc", 0) == 0
    assert edit_distance("kitten", "sitting", 5) == 3
    assert edit_distance("a" * 50, "b", 2) == 3  # stops early past the limit
