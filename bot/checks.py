"""``saathi check``: everything an admin can get wrong in content and translations.

Reports, each naming file, place and field: content that does not validate, strings with no
Hindi (or only a fuzzy guess), placeholders or <b> tags that differ between English and Hindi,
texts over a channel's limits in either language, and WhatsApp templates
(``conversations/templates.yaml``) that WhatsApp Manager would not take or the bot could not fill:
a kind without a template, a missing language, ``{{n}}`` not matching the parameters, a name not
in lowercase_with_underscores, a body over 1024 characters.

The limits are the stricter of the two channels: a question with buttons is a WhatsApp
interactive message, whose body holds 1024 characters (a plain text, like a Telegram message,
4096); a button label 20. A quiz question with its heading and four options stays far inside
1024 by the content's own field limits, so only the onboarding questions (up to 1,200
characters in English, and a translation may run longer) are measured against the body.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path

from babel.messages.pofile import read_po

from .catalogs import TARGET_LANGS, extract
from .channels.whatsapp import BODY_MAX, TEXT_MAX, to_whatsapp
from .content import default_content_dir, load_content, read_yaml
from .core.content import BUTTON_MAX, DIAGRAM_LABEL_MAX, EXPLANATION_MAX, LESSON_MAX, OPTION_MAX, QUESTION_MAX, Content, ContentError
from .core.engine import BUTTON_LABELS
from .i18n import Catalogs, default_locales_dir
from .pictures import ShapingUnavailable, require_shaping
from .templates import read_templates

TELEGRAM_TEXT_MAX = 4096


def placeholders(text: str) -> set[str] | None:
    """The ``{names}`` in ``text``; ``None`` if its braces are malformed."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return None


def check_catalogs(locales_dir: Path, content_dir: Path) -> Iterator[str]:
    """Missing, fuzzy or inconsistent translations, per domain."""
    for domain, template in extract(content_dir).items():
        for lang in TARGET_LANGS:
            po_path = locales_dir / lang / "LC_MESSAGES" / f"{domain}.po"
            shown = f"locales/{lang}/LC_MESSAGES/{domain}.po"
            if not po_path.is_file():
                yield f"{shown}: missing (run `make i18n`, then translate)"
                continue
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=lang)
            for message in template:
                if not message.id:
                    continue
                where = ", ".join(message.auto_comments) or ", ".join(f"{f}:{n}" for f, n in message.locations)
                found = catalog.get(message.id)
                plural = isinstance(message.id, (tuple, list))
                english = message.id[1] if plural else message.id  # a count's forms are checked against the plural
                name = (message.id[0] if plural else message.id)[:60]
                forms = list(found.string) if found is not None and plural and isinstance(found.string, (tuple, list)) else (
                    [found.string] if found is not None else [])
                if found is None or not forms or not all(forms):
                    yield f"{shown}: no translation for {name!r} ({where}); run `make i18n` and translate it"
                    continue
                if found.fuzzy:
                    yield f"{shown}: translation of {name!r} is marked fuzzy ({where}); check it and remove the fuzzy flag"
                    continue
                for form in forms:
                    source, target = placeholders(english), placeholders(form)
                    if target is None or source != target:
                        yield f"{shown}: placeholders differ for {name!r}: English {sorted(source or [])}, translation {sorted(target or [])}"
                    for tag in ("<b>", "</b>", "<i>", "</i>"):
                        if english.count(tag) != form.count(tag):
                            yield f"{shown}: {tag} appears {english.count(tag)}× in English but {form.count(tag)}× in the translation of {name!r}"


def check_lengths(content: Content, texts: Catalogs) -> Iterator[str]:
    """Texts over their limits, in every language."""
    for lang in ("en", *TARGET_LANGS):
        tr = lambda s: texts.gettext(lang, s)  # noqa: E731

        def over(text: str, limit: int, where: str) -> Iterator[str]:
            if len(text) > limit:
                yield f"{where} [{lang}]: {len(text)} characters, the limit is {limit}: {text[:40]!r}…"

        for step in content.onboarding.steps.values():
            where = f"conversations/onboarding.yaml: step '{step.id}'"
            interactive = bool(step.options) or step.kind in ("choice", "consent", "multi", "summary")
            limit = BODY_MAX if interactive else min(TEXT_MAX, TELEGRAM_TEXT_MAX)
            yield from over(to_whatsapp(tr(step.text)), limit, f"{where}, field 'text'")
            if step.summary_label:
                yield from over(tr(step.summary_label), BUTTON_MAX, f"{where}, field 'summary_label'")
            for option in step.options:
                try:
                    label = tr(option.label).format(**{k: texts.money(lang, v) for k, v in option.amounts})
                except (KeyError, IndexError, ValueError) as exc:
                    yield f"{where}, option '{option.id}', field 'label' [{lang}]: placeholder {exc} has no amount"
                    continue
                yield from over(label, BUTTON_MAX, f"{where}, option '{option.id}', field 'label'")
        for module in content.modules:
            where = f"conversations/modules/{module.id}.yaml: module '{module.id}'"
            yield from over(tr(module.title), 40, f"{where}, field 'title'")
            yield from over(tr(module.short), BUTTON_MAX, f"{where}, field 'short'")
            yield from over(tr(module.summary), OPTION_MAX, f"{where}, field 'summary'")
            for lesson in module.lessons:
                yield from over(tr(lesson.text), LESSON_MAX, f"{where}, lesson '{lesson.id}', field 'text'")
                if lesson.diagram is not None:  # a translated label must still fit its box
                    d, there = lesson.diagram, f"{where}, lesson '{lesson.id}', diagram"
                    yield from over(tr(d.caption), 1024, f"{there}, field 'caption'")
                    for label in (d.note, *(x for item in d.items for x in (item.label, item.who, item.detail, item.total))):
                        if label:
                            yield from over(tr(label), DIAGRAM_LABEL_MAX, f"{there}, label {label[:30]!r}")
            for question in module.quiz:
                yield from over(tr(question.text), QUESTION_MAX, f"{where}, question '{question.id}', field 'text'")
                yield from over(tr(question.explanation), EXPLANATION_MAX, f"{where}, question '{question.id}', field 'explanation'")
                for option in question.options:
                    yield from over(tr(option.text), OPTION_MAX, f"{where}, question '{question.id}', option '{option.id}'")
        for msgid in BUTTON_LABELS:
            yield from over(tr(msgid), BUTTON_MAX, f"button {msgid!r}")


def check_guessable(content: Content, texts: Catalogs) -> Iterator[str]:
    """Quizzes a guesser passes by picking the longest option.

    In any module, the correct option may be the only longest one in at most a third of the
    questions, in every language: otherwise "tap the longest" scores a pass without reading.
    """
    for lang in ("en", *TARGET_LANGS):
        for module in content.modules:
            tells = []
            for question in module.quiz:
                lengths = {o.id: len(texts.gettext(lang, o.text)) for o in question.options}
                longest = max(lengths.values())
                if lengths[question.correct.id] == longest and list(lengths.values()).count(longest) == 1:
                    tells.append(question.id)
            if len(tells) * 3 > len(module.quiz):
                yield (
                    f"conversations/modules/{module.id}.yaml: module '{module.id}' [{lang}]: the correct option is the only "
                    f"longest one in {len(tells)} of {len(module.quiz)} questions ({', '.join(tells)}); at most a third may be"
                )


_WORD_BREAK = re.compile(r"[\s,.;:!?()\"'“”‘’।|/\-–—…•*<>{}\[\]]+")


def check_glossary(content_dir: Path, locales_dir: Path) -> Iterator[str]:
    """Hindi that uses a word the glossary (conversations/glossary.yaml) says to avoid."""
    path = content_dir / "glossary.yaml"
    if not path.exists():
        return
    data = read_yaml(path, content_dir) or {}
    avoid: dict[str, tuple[str, str]] = {}  # rejected word -> (English term, the chosen Hindi)
    for index, term in enumerate(data.get("terms") or []):
        if not isinstance(term, dict) or not term.get("en") or not term.get("hi") or not isinstance(term.get("avoid", []), list):
            yield f"conversations/glossary.yaml: term #{index + 1} needs en, hi and a list under avoid"
            continue
        for word in term.get("avoid", []):
            avoid[str(word)] = (str(term["en"]), str(term["hi"]))
    for lang in TARGET_LANGS:
        for po in sorted((locales_dir / lang / "LC_MESSAGES").glob("*.po")):
            with open(po, "rb") as handle:
                catalog = read_po(handle)
            shown = po.relative_to(locales_dir.parent) if locales_dir.parent in po.parents else po
            for message in catalog:
                text = " ".join(message.string) if isinstance(message.string, (tuple, list)) else message.string
                if not message.id or not text:
                    continue
                words = set(_WORD_BREAK.split(text))
                found = (words & set(avoid)) | {w for w in avoid if " " in w and w in text}  # phrases too
                for word in sorted(found):
                    english, chosen = avoid[word]
                    yield (f"{shown}: {message.id[:50]!r} uses {word!r}; the glossary's Hindi for "
                           f"'{english}' is {chosen!r} (conversations/glossary.yaml)")


def check_templates(content_dir: Path) -> Iterator[str]:
    """Problems with the WhatsApp templates file (see ``bot.core.templates``)."""
    _book, problems = read_templates(content_dir)
    yield from problems


def check_all(content_dir: Path | None = None, locales_dir: Path | None = None) -> list[str]:
    """Every problem found; an empty list means the content is ready to ship."""
    content_dir = content_dir or default_content_dir()
    locales_dir = locales_dir or default_locales_dir()
    try:
        content = load_content(content_dir)
    except ContentError as exc:
        return [str(exc)]
    problems = list(check_catalogs(locales_dir, content_dir))
    texts = Catalogs.load(locales_dir)
    problems += list(check_lengths(content, texts))
    problems += list(check_guessable(content, texts))
    problems += list(check_glossary(content_dir, locales_dir))
    problems += list(check_templates(content_dir))
    try:
        require_shaping()
    except ShapingUnavailable as exc:
        problems.append(f"pictures: {exc}")
    return problems
