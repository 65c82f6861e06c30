"""Turning chat HTML (the core's text) into what a plain-text channel can show."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"</?(?:b|i)>")


def plain(text: str) -> str:
    """Chat HTML as plain text: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", text))
