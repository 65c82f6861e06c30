"""Read ``conversations/templates.yaml`` (the approved WhatsApp templates) into the core's model."""

from __future__ import annotations

import logging
from pathlib import Path

from .content import default_content_dir, read_yaml
from .core.content import ContentError
from .core.templates import TemplateBook, parse

log = logging.getLogger(__name__)
FILE = "templates.yaml"


def read_templates(content_dir: Path | None = None) -> tuple[TemplateBook, list[str]]:
    """The templates and every problem with the file (``saathi check`` reports them)."""
    root = content_dir or default_content_dir()
    path = root / FILE
    shown = f"{root.name}/{FILE}"
    if not path.is_file():
        return TemplateBook(), [f"{shown}: missing; WhatsApp messages outside the 24-hour window would all wait"]
    try:
        data = read_yaml(path, root)
    except ContentError as exc:
        return TemplateBook(), [str(exc)]
    return parse(data, shown)


def load_templates(content_dir: Path | None = None) -> TemplateBook:
    """The templates that are valid (a broken entry is left out and logged: its messages wait instead)."""
    book, problems = read_templates(content_dir)
    for problem in problems:
        log.warning("WhatsApp templates: %s", problem)
    return book
