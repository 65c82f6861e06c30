"""Turning chat HTML (the core's text) into what a plain-text channel can show."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"</?(?:b|i)>")


def plain(text: str) -> str:
    """Chat HTML as plain text: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", text))


# Telegram knows only these four named entities; "&nbsp;" in a translation must be escaped, not sent.
_ALLOWED = re.compile(r"</?(?:b|i)>|&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def safe_html(text: str) -> str:
    """Chat HTML made safe for Telegram's HTML parser.

    Keeps <b>, <i> and valid entities; escapes every other '<', '>' and '&' (content authors
    write "Gems & jewellery" without thinking of HTML, and that must not break a message).
    """
    out, pos = [], 0
    for match in _ALLOWED.finditer(text):
        out.append(html.escape(text[pos : match.start()], quote=False))
        out.append(match.group(0))
        pos = match.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def answered(label: str) -> str:
    """A tapped button's label as the answer shown under its question, without a tick of its own
    (the answer line has one: "✅ Confirm", not "✅ ✅ Confirm")."""
    return label.removeprefix("✅").removeprefix("✔️").strip() or label


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters, at line breaks where possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n ")
    pieces.append(text)
    return pieces
