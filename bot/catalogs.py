"""Keeping the gettext catalogs in step with the code and the content.

``extract`` collects every user-visible string: ``_()``/``N_()`` calls in ``bot/`` (domain
``messages``) and the translatable fields of each YAML file under ``conversations/`` (one domain
per file, named after it: ``onboarding``, ``export_ready``, …). ``update`` writes
``locales/<domain>.pot`` and merges it into ``locales/hi/LC_MESSAGES/<domain>.po``, keeping what
is already translated. ``saathi i18n`` runs both; ``saathi check`` then reports what is missing.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_python
from babel.messages.pofile import read_po, write_po

from .content import default_content_dir, read_yaml
from .core.content import TRANSLATABLE_KEYS
from .i18n import default_locales_dir

CODE_DOMAIN = "messages"
TARGET_LANGS = ("hi",)


def yaml_strings(data: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(where, text)`` for every translatable string in parsed YAML ``data``."""
    if isinstance(data, dict):
        label = data.get("id", "")
        for key, value in data.items():
            here = f"{path}.{label}" if label and path else (path or str(label))
            if key in TRANSLATABLE_KEYS and isinstance(value, str) and value.strip():
                yield f"{here}.{key}".lstrip("."), value.strip()
            elif isinstance(value, (dict, list)):
                yield from yaml_strings(value, f"{here}.{key}".lstrip("."))
    elif isinstance(data, list):
        for item in data:
            yield from yaml_strings(item, path)


# A fixed header date: the catalogs change only when their strings do (same input, same bytes).
CREATION_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def code_strings(package_dir: Path) -> Iterator[tuple[str, str | tuple[str, str]]]:
    """``(file:line, text)`` for every ``_()``/``N_()`` string in the Python package; a ``P_()``
    message gives its ``(singular, plural)``."""
    for py in sorted(package_dir.rglob("*.py")):
        with py.open("rb") as handle:
            for lineno, func, message, _comments in extract_python(handle, ["_", "N_", "P_"], [], {}):
                if func == "P_" and isinstance(message, tuple):
                    forms = tuple(m for m in message if m is not None)  # a trailing comma adds a None
                    if len(forms) == 2 and all(isinstance(m, str) and m for m in forms):
                        yield f"{py.relative_to(package_dir.parent)}:{lineno}", forms  # singular and plural
                        continue
                if isinstance(message, tuple):  # _("text {n}", n=...) arrives as ("text {n}", None)
                    message = message[0]
                if isinstance(message, str) and message:
                    yield f"{py.relative_to(package_dir.parent)}:{lineno}", message


def extract(content_dir: Path | None = None, package_dir: Path | None = None) -> dict[str, Catalog]:
    """A template catalog per domain."""
    content_dir = content_dir or default_content_dir()
    package_dir = package_dir or Path(__file__).resolve().parent
    templates: dict[str, Catalog] = {}
    code = Catalog(domain=CODE_DOMAIN, project="Export Saathi", charset="utf-8", fuzzy=False,
                   creation_date=CREATION_DATE)
    for where, text in code_strings(package_dir):
        file, _, line = where.rpartition(":")
        code.add(text, locations=[(file, int(line))])
    templates[CODE_DOMAIN] = code
    for path in [content_dir / "onboarding.yaml", *sorted((content_dir / "modules").glob("*.yaml"))]:
        if not path.is_file():
            continue
        catalog = Catalog(domain=path.stem, project="Export Saathi", charset="utf-8", fuzzy=False,
                          creation_date=CREATION_DATE)
        for where, text in yaml_strings(read_yaml(path, content_dir)):
            existing = catalog.get(text)
            if existing is None:
                catalog.add(text, auto_comments=[f"id: {where}"])
            else:
                existing.auto_comments.append(f"id: {where}")
        templates[path.stem] = catalog
    return templates


def update(locales_dir: Path | None = None, templates: dict[str, Catalog] | None = None) -> list[str]:
    """Write the templates and merge them into each language's catalogs; return what changed."""
    locales_dir = locales_dir or default_locales_dir()
    templates = templates if templates is not None else extract()
    report = []
    for domain, template in templates.items():
        _write(locales_dir / f"{domain}.pot", template)
        for lang in TARGET_LANGS:
            po_path = locales_dir / lang / "LC_MESSAGES" / f"{domain}.po"
            if po_path.is_file():
                with po_path.open("rb") as handle:
                    catalog = read_po(handle, locale=lang, domain=domain)
            else:
                catalog = Catalog(locale=lang, domain=domain, project="Export Saathi", charset="utf-8", fuzzy=False,
                                  creation_date=CREATION_DATE)
            before = {m.id for m in catalog if m.id}
            catalog.update(template, no_fuzzy_matching=False, update_header_comment=False)
            catalog.fuzzy = False
            after = {m.id for m in catalog if m.id}
            added = len(after - before)
            missing = sum(1 for m in catalog if m.id and (not m.string or not all(m.string) or m.fuzzy))
            _write(po_path, catalog)
            report.append(f"{po_path.relative_to(locales_dir.parent)}: {len(after)} strings, {added} new, {missing} to translate")
    return report


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    # No line numbers: moving code must not rewrite every catalog (the file names stay as references).
    write_po(buffer, catalog, width=100, omit_header=False, ignore_obsolete=True, include_previous=False,
             include_lineno=False)
    data = buffer.getvalue()
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)
