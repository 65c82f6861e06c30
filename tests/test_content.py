"""The shipped content and translations, and the errors an admin gets for broken content."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po, write_po

from bot import cli
from bot.checks import check_all
from bot.content import default_content_dir, load_content
from bot.core.content import LESSON_MAX, Content, ContentError
from bot.i18n import Catalogs, default_locales_dir

DEVANAGARI = re.compile(r"[\u0900-\u097F]")
MODULE_DOMAINS = ("export_ready", "documents", "incoterms", "payments", "govt_support", "alibaba",
                  "pricing", "buyer_safety", "hs_codes", "shipping", "samples_packing")


# ----------------------------------------------------------------- the shipped content
def test_shipped_onboarding_asks_language_first_and_ends_with_the_summary(content: Content):
    flow = content.onboarding
    assert flow.first == "language"
    ids = list(flow.steps)
    assert ids[1] == "consent"
    assert ids[-1] == "summary"
    assert {"owner_name", "business_name", "state", "district", "markets", "phone"} <= set(ids)
    # Following `next` from the first step visits every step exactly once and ends at the summary.
    seen, step = [], flow.first
    while step is not None:
        seen.append(step)
        step = flow.step(step).next
    assert seen == ids


def test_shipped_modules_in_menu_order_with_the_required_ones(content: Content):
    assert [m.id for m in content.modules] == list(MODULE_DOMAINS)
    assert content.required_modules == ("export_ready", "payments", "alibaba")
    for module in content.modules:
        assert module.lessons and module.quiz
        assert 1 <= module.pass_mark <= len(module.quiz)
        assert all(len(lesson.text) <= LESSON_MAX for lesson in module.lessons)
        for question in module.quiz:
            assert sum(o.correct for o in question.options) == 1, (module.id, question.id)
    # Every module but the first opens after an earlier one: export_ready first, then what builds on it.
    earlier: set[str] = set()
    for module in content.modules:
        if module.id != "export_ready":
            assert module.requires and set(module.requires) <= earlier, (module.id, module.requires)
        earlier.add(module.id)


def test_module_catalogs_have_every_hindi_translation():
    """The module catalogs are complete: `saathi check` reports nothing about them."""
    problems = check_all()
    about_modules = [
        p for p in problems
        if any(f"LC_MESSAGES/{d}.po" in p or f"modules/{d}.yaml" in p for d in MODULE_DOMAINS)
    ]
    assert about_modules == []


def test_module_texts_are_in_hindi(content: Content, catalogs: Catalogs):
    for module in content.modules:
        texts = [module.title, module.short, *(lesson.text for lesson in module.lessons)]
        for question in module.quiz:
            texts += [question.text, question.explanation, *(o.text for o in question.options)]
        for text in texts:
            assert catalogs.has("hi", text), (module.id, text[:60])
        for lesson in module.lessons:
            assert DEVANAGARI.search(catalogs.gettext("hi", lesson.text)), (module.id, lesson.id)


def test_check_all_clean():
    """Everything, the onboarding and the code's own strings included, is ready to ship."""
    assert check_all() == []


def test_saathi_check_prints_every_problem_and_fails_when_there_are_any(capsys):
    problems = check_all()
    code = cli.main(["check"])
    out = capsys.readouterr().out
    if problems:
        assert code == 1
        assert f"{len(problems)} problem(s) found." in out
        assert problems[0] in out
    else:
        assert code == 0
        assert "OK" in out


# ----------------------------------------------------------------- broken content
@pytest.fixture
def content_copy(tmp_path: Path) -> Path:
    root = tmp_path / "conversations"
    shutil.copytree(default_content_dir(), root)
    return root


def edit_yaml(path: Path, change: Callable[[dict], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def load_error(root: Path) -> ContentError:
    with pytest.raises(ContentError) as info:
        load_content(root)
    return info.value


def test_an_unchanged_copy_loads(content_copy: Path, content: Content):
    loaded = load_content(content_copy)
    assert [m.id for m in loaded.modules] == [m.id for m in content.modules]


def test_the_yaml_round_trip_used_by_these_tests_keeps_content_valid(content_copy: Path):
    edit_yaml(content_copy / "onboarding.yaml", lambda data: None)
    edit_yaml(content_copy / "modules" / "export_ready.yaml", lambda data: None)
    assert load_content(content_copy).module("export_ready") is not None


def test_duplicate_option_id(content_copy: Path):
    def change(data):
        state = next(s for s in data["steps"] if s["id"] == "state")
        state["options"][1]["id"] = state["options"][0]["id"]

    edit_yaml(content_copy / "onboarding.yaml", change)
    error = load_error(content_copy)
    message = str(error)
    assert message.startswith("conversations/onboarding.yaml: ")
    assert "step 'state'" in message
    assert "option id 'andhra_pradesh' is used twice" in message


def test_next_names_a_missing_step(content_copy: Path):
    def change(data):
        next(s for s in data["steps"] if s["id"] == "owner_name")["next"] = "favourite_colour"

    edit_yaml(content_copy / "onboarding.yaml", change)
    message = str(load_error(content_copy))
    assert message.startswith("conversations/onboarding.yaml: ")
    assert "step 'owner_name', field 'next'" in message
    assert "'favourite_colour'" in message and "does not exist" in message


def test_quiz_question_with_two_correct_options(content_copy: Path):
    def change(data):
        for option in data["quiz"][0]["options"][:2]:
            option["correct"] = True

    edit_yaml(content_copy / "modules" / "export_ready.yaml", change)
    message = str(load_error(content_copy))
    assert message.startswith("conversations/modules/export_ready.yaml: ")
    assert "module 'export_ready', question 'iec_basics', field 'options'" in message
    assert "exactly one" in message


def test_lesson_over_600_characters(content_copy: Path):
    def change(data):
        data["lessons"][1]["text"] = "Update your IEC. " * 40  # 680 characters

    edit_yaml(content_copy / "modules" / "export_ready.yaml", change)
    error = load_error(content_copy)
    message = str(error)
    assert message.startswith("conversations/modules/export_ready.yaml: ")
    assert "module 'export_ready', lesson #2, field 'text'" in message
    assert "679 characters; the limit is 600" in message


def test_module_requires_an_unknown_module(content_copy: Path):
    edit_yaml(content_copy / "modules" / "documents.yaml", lambda data: data.update(requires=["export_ready", "shipping_by_camel"]))
    message = str(load_error(content_copy))
    assert message.startswith("conversations/modules/documents.yaml: ")
    assert "module 'documents', field 'requires'" in message
    assert "'shipping_by_camel'" in message and "does not exist" in message


def test_invalid_yaml_names_the_line(content_copy: Path):
    path = content_copy / "modules" / "payments.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[3].startswith("title:")
    lines[3] = "title: Getting paid: safely"  # a second ': ' on line 4 is not valid YAML
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    error = load_error(content_copy)
    message = str(error)
    assert message.startswith("conversations/modules/payments.yaml: line 4, column ")
    assert "is not valid YAML" in message


def test_module_id_must_match_its_file_name(content_copy: Path):
    (content_copy / "modules" / "payments.yaml").rename(content_copy / "modules" / "money.yaml")
    error = load_error(content_copy)
    message = str(error)
    assert message.startswith("conversations/modules/money.yaml: ")
    assert "module 'payments', field 'id'" in message
    assert "'money'" in message


def test_unknown_field_is_named(content_copy: Path):
    def change(data):
        next(s for s in data["steps"] if s["id"] == "district")["max_lenght"] = 50

    edit_yaml(content_copy / "onboarding.yaml", change)
    message = str(load_error(content_copy))
    assert "step 'district', field 'max_lenght'" in message
    assert "not a known field" in message


def test_button_label_over_the_whatsapp_limit(content_copy: Path):
    def change(data):
        next(s for s in data["steps"] if s["id"] == "sector")["options"][0]["label"] = "Handicrafts and artware"

    edit_yaml(content_copy / "onboarding.yaml", change)
    message = str(load_error(content_copy))
    assert "step 'sector', option #1, field 'label'" in message
    assert "limit is 20" in message


def test_broken_content_is_reported_by_check_all(content_copy: Path):
    edit_yaml(content_copy / "modules" / "documents.yaml", lambda data: data.update(requires=["shipping_by_camel"]))
    problems = check_all(content_dir=content_copy, locales_dir=default_locales_dir())
    assert len(problems) == 1
    assert "conversations/modules/documents.yaml" in problems[0] and "'shipping_by_camel'" in problems[0]


def test_a_quiz_a_guesser_passes_by_tapping_the_longest_option_is_refused(content_copy: Path):
    def longest_is_right(data):
        for question in data["quiz"][:2]:  # two of five: more than a third
            for option in question["options"]:
                if option.get("correct"):
                    option["text"] = "The right answer, written out far longer than any other option"

    edit_yaml(content_copy / "modules" / "incoterms.yaml", longest_is_right)
    problems = check_all(content_dir=content_copy, locales_dir=default_locales_dir())
    assert any("module 'incoterms' [en]: the correct option is the only longest one in 2 of 5 questions" in p for p in problems), problems


def test_hindi_that_uses_a_word_the_glossary_rejects_is_flagged(locales_copy: Path, content: Content):
    lesson = content.module("export_ready").lessons[0].text
    po = locales_copy / "hi" / "LC_MESSAGES" / "export_ready.po"
    assert not any("glossary" in p for p in check_all(locales_dir=locales_copy))
    edit_po(po, lambda catalog: set_translation(catalog, lesson, catalog.get(lesson).string + " क्रेता से पूछें।"))
    [flagged] = [p for p in check_all(locales_dir=locales_copy) if "glossary" in p]
    assert "uses 'क्रेता'" in flagged and "'buyer' is 'ख़रीदार'" in flagged


# ----------------------------------------------------------------- broken translations
@pytest.fixture
def locales_copy(tmp_path: Path) -> Path:
    root = tmp_path / "locales"
    shutil.copytree(default_locales_dir(), root)
    return root


def edit_po(path: Path, change: Callable) -> None:
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="hi")
    change(catalog)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100)
    path.write_bytes(buffer.getvalue())


def set_translation(catalog, msgid: str, msgstr: str) -> None:
    message = catalog.get(msgid)
    if message is None:
        catalog.add(msgid, msgstr)
    else:
        message.string = msgstr
        message.flags.discard("fuzzy")


def test_check_reports_a_missing_hindi_translation_and_a_placeholder_mismatch(locales_copy: Path, content: Content):
    lesson = content.module("export_ready").lessons[0].text
    po_dir = locales_copy / "hi" / "LC_MESSAGES"
    # The unchanged copy has nothing to say about this string.
    before = check_all(locales_dir=locales_copy)
    assert not any(repr(lesson[:60]) in p for p in before)

    edit_po(po_dir / "export_ready.po", lambda catalog: set_translation(catalog, lesson, ""))
    thanks = "Thank you, {name}! Your profile is saved."
    edit_po(po_dir / "messages.po", lambda catalog: set_translation(catalog, thanks, "धन्यवाद, {naam} जी!"))

    problems = check_all(locales_dir=locales_copy)
    missing = [p for p in problems if p.startswith("locales/hi/LC_MESSAGES/export_ready.po: no translation for ")]
    assert len(missing) == 1
    assert repr(lesson[:60]) in missing[0]
    assert "export_ready.lessons.iec.text" in missing[0]  # where the string lives in the YAML
    mismatch = [p for p in problems if p.startswith("locales/hi/LC_MESSAGES/messages.po: placeholders differ")]
    assert len(mismatch) == 1
    assert repr(thanks) in mismatch[0]
    assert "English ['name'], translation ['naam']" in mismatch[0]


def test_check_reports_a_fuzzy_translation(locales_copy: Path, content: Content):
    title = content.module("payments").title

    def change(catalog):
        catalog.get(title).flags.add("fuzzy")

    edit_po(locales_copy / "hi" / "LC_MESSAGES" / "payments.po", change)
    problems = check_all(locales_dir=locales_copy)
    assert any(p.startswith("locales/hi/LC_MESSAGES/payments.po: translation of ") and "fuzzy" in p and repr(title) in p for p in problems)
    # A fuzzy guess is never shown to owners.
    assert Catalogs.load(locales_copy).gettext("hi", title) == title


def test_check_reports_a_changed_placeholder_in_an_option_label(locales_copy: Path):
    """Regression: a Hindi option label with a changed {placeholder} crashed `saathi check` with a KeyError."""
    edit_po(locales_copy / "hi" / "LC_MESSAGES" / "onboarding.po", lambda catalog: set_translation(catalog, "Under {a}", "{b} से कम"))
    problems = check_all(locales_dir=locales_copy)
    assert any("onboarding.po: placeholders differ for 'Under {a}'" in p for p in problems)


def test_check_measures_a_question_with_buttons_against_whatsapps_1024_character_body(locales_copy: Path, content: Content):
    consent = content.onboarding.steps["consent"].text
    long_hindi = "हम आपका नाम, शहर और कारोबार की जानकारी रखेंगे। " * 24  # about 1,100 characters: fine on Telegram
    assert 1024 < len(long_hindi) <= 2048
    edit_po(locales_copy / "hi" / "LC_MESSAGES" / "onboarding.po", lambda catalog: set_translation(catalog, consent, long_hindi))
    problems = check_all(locales_dir=locales_copy)
    over = [p for p in problems if "step 'consent', field 'text' [hi]" in p]
    assert len(over) == 1 and "the limit is 1024" in over[0]


def test_each_module_button_is_named_like_its_module_in_both_languages(content: Content):
    catalogs = Catalogs.load(default_locales_dir())
    for lang in ("en", "hi"):
        for module in content.modules:
            title, short = catalogs.gettext(lang, module.title), catalogs.gettext(lang, module.short)
            assert short.casefold() in title.casefold(), (lang, module.id, short, title)
