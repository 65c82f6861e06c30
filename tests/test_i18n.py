"""Indian number, money and date formats in both languages."""

import datetime as dt

import pytest

from bot.i18n import IST, Catalogs


@pytest.fixture(scope="module")
def texts() -> Catalogs:
    return Catalogs.load()


def test_amounts_use_lakh_and_crore_with_indian_grouping(texts):
    assert texts.money_exact("en", 10_000_000) == "₹1,00,00,000"
    assert texts.number("hi", 150000) == "1,50,000"
    assert texts.money("en", 4_000_000) == "₹40 lakh"
    assert texts.money("en", 15_000_000) == "₹1.5 crore"
    assert texts.money("hi", 15_000_000) == "₹1.5 करोड़"
    assert texts.money("hi", 500) == "₹500"


@pytest.mark.parametrize(
    ("hour", "hindi", "english"),
    [(9, "सुबह 9:00 बजे", "9:00 AM"), (13, "दोपहर 1:00 बजे", "1:00 PM"), (18, "शाम 6:00 बजे", "6:00 PM"), (22, "रात 10:00 बजे", "10:00 PM")],
)
def test_times_are_india_time_with_the_part_of_the_day_in_hindi(texts, hour, hindi, english):
    when = dt.datetime(2026, 3, 15, hour, 0, tzinfo=IST).astimezone(dt.timezone.utc)
    assert texts.datetime("hi", when) == f"15 मार्च 2026, {hindi}"
    assert texts.datetime("en", when) == f"15 March 2026, {english}"


def test_a_missing_translation_falls_back_to_english(texts):
    assert texts.gettext("hi", "No such message anywhere") == "No such message anywhere"
    assert texts.gettext("hi", "Yes") == "हाँ"


def test_updating_the_catalogs_is_deterministic_and_they_are_up_to_date(tmp_path):
    """`saathi i18n` on the committed tree changes no byte, so a catalog diff is always a string change."""
    import shutil
    from pathlib import Path

    from bot import catalogs

    committed = Path(catalogs.default_locales_dir())
    copy = tmp_path / "locales"
    shutil.copytree(committed, copy)
    for _ in range(2):
        catalogs.update(copy)
        changed = [str(p.relative_to(copy)) for p in sorted(copy.rglob("*.po*"))
                   if p.read_bytes() != (committed / p.relative_to(copy)).read_bytes()]
        assert changed == [], f"run `make i18n` and commit: {changed}"
    assert len(list(copy.rglob("*.po"))) >= 8


def test_a_count_takes_its_languages_form():
    from bot.core.session import P_
    from bot.i18n import Catalogs

    texts = Catalogs.load()
    queued = P_("⏹ Broadcast #{id} cancelled: {n} message will not be sent.", "⏹ Broadcast #{id} cancelled: {n} messages will not be sent.")
    assert texts.ngettext("en", *queued, 1).format(id=3, n=1) == "⏹ Broadcast #3 cancelled: 1 message will not be sent."
    assert texts.ngettext("en", *queued, 4).format(id=3, n=4) == "⏹ Broadcast #3 cancelled: 4 messages will not be sent."
    one, many = texts.ngettext("hi", *queued, 1), texts.ngettext("hi", *queued, 4)
    assert "भेजा जाएगा" in one and "भेजे जाएँगे" in many  # Hindi: one form for 0 and 1, another above
    assert texts.ngettext("hi", *queued, 0) == one
    # A message nobody translated falls back to English, in the right form.
    assert texts.ngettext("hi", "{n} camel", "{n} camels", 2) == "{n} camels"


def test_plural_messages_are_extracted_with_both_forms():
    from bot.catalogs import extract

    code = extract()["messages"]
    message = code.get(("about {n} minute", "about {n} minutes"))
    assert message is not None and message.pluralizable and message.id == ("about {n} minute", "about {n} minutes")
