"""Lesson diagrams, drawn from the module files in the reader's language.

A lesson may carry a ``diagram`` (conversations/modules/*.yaml); its labels are translated
like every other string of the module. The engine only names it (``Photo.ref``); the picture is
drawn here when it is first sent in a language, and kept: there are a few, and they do not change
while the bot runs.

Two kinds: ``flow`` (steps left to right, each with who does it: the shipping chain) and
``stack`` (a price built up from the bottom, with the price each layer completes: EXW → CIF).
"""

from __future__ import annotations

from .core.content import Content, Diagram
from .i18n import Catalogs
from .pictures import ACCENT, INK, MUTED, Canvas

# One colour per actor, the same wherever the actor appears (matched on the English label).
PALETTE = [(46, 125, 50), (21, 101, 192), (230, 124, 0), (84, 91, 98), (142, 36, 170), (0, 131, 143)]
BAND = [(232, 245, 233), (227, 242, 253), (255, 243, 224), (236, 239, 241), (243, 229, 245), (224, 247, 250)]


class DiagramBook:
    """Every lesson diagram of the content, drawn on demand and cached per language."""

    def __init__(self, content: Content, texts: Catalogs):
        self.texts = texts
        self.diagrams: dict[str, Diagram] = {
            lesson.diagram.id: lesson.diagram for m in content.modules for lesson in m.lessons if lesson.diagram is not None
        }
        self._drawn: dict[tuple[str, str], bytes] = {}

    def png(self, ref: str, lang: str) -> bytes:
        """The diagram ``ref`` in ``lang`` as a PNG; ``KeyError`` for a name the content does not have."""
        key = (ref, lang or "hi")
        if key not in self._drawn:
            diagram = self.diagrams[ref]
            draw = _flow if diagram.kind == "flow" else _stack
            self._drawn[key] = draw(diagram, lambda s: self.texts.gettext(key[1], s) if s else "")
        return self._drawn[key]


def _flow(d: Diagram, tr) -> bytes:
    n = len(d.items)
    box_w, gap, margin = 230, 46, 40
    W = margin * 2 + n * box_w + (n - 1) * gap
    H = 490 if d.note else 430
    c = Canvas.new(W, H, background=(255, 255, 255))
    draw = c.draw
    c.text(W / 2, 62, tr(d.title), 34, bold=True, align="center")
    actors: dict[str, int] = {}
    top, box_h = 110, 150
    for i, item in enumerate(d.items):
        x = margin + i * (box_w + gap)
        draw.rounded_rectangle((x, top, x + box_w, top + box_h), radius=14, outline=INK, width=3, fill=(250, 250, 247))
        draw.ellipse((x + 10, top + 10, x + 42, top + 42), fill=INK)  # the step's number, for the note to refer to
        c.text(x + 26, top + 34, str(i + 1), 20, bold=True, fill=(255, 255, 255), align="center")
        lines = c.wrap(tr(item.label), 24, box_w - 24, bold=True)
        y = top + box_h / 2 - (len(lines) - 1) * 17 + 8
        for line in lines:
            c.text(x + box_w / 2, y, line, 24, bold=True, align="center")
            y += 34
        if i < n - 1:  # the arrow to the next step
            ax, ay = x + box_w + 6, top + box_h / 2
            draw.line((ax, ay, ax + gap - 14, ay), fill=INK, width=4)
            draw.polygon([(ax + gap - 8, ay), (ax + gap - 20, ay - 9), (ax + gap - 20, ay + 9)], fill=INK)
        if item.who:
            colour = actors.setdefault(item.who, len(actors) % len(PALETTE))
            pill_top = top + box_h + 24
            draw.rounded_rectangle((x + 6, pill_top, x + box_w - 6, pill_top + 46), radius=23, fill=PALETTE[colour])
            c.text(x + box_w / 2, pill_top + 31, tr(item.who), 21, bold=True, fill=(255, 255, 255), align="center")
        if item.detail:
            y = top + box_h + 104
            for line in c.wrap(tr(item.detail), 20, box_w - 8):
                c.text(x + box_w / 2, y, line, 20, fill=MUTED, align="center")
                y += 28
    if d.note:
        c.text(W / 2, H - 28, tr(d.note), 22, fill=ACCENT, align="center")
    return c.png()


def _stack(d: Diagram, tr) -> bytes:
    n = len(d.items)
    groups, group = [], 0  # the price each layer belongs to: layers up to the first total, then the next …
    for item in d.items:
        groups.append(group)
        group += bool(item.total)
    prices = max(group, 1)
    W, layer_h, margin = 1040, 70, 40
    H = 130 + n * layer_h + 70
    c = Canvas.new(W, H, background=(255, 255, 255))
    draw = c.draw
    c.text(W / 2, 62, tr(d.title), 34, bold=True, align="center")
    left, right = margin, 600
    bottom = H - 70
    for i, item in enumerate(d.items):  # first item at the bottom: the price is built up
        y1 = bottom - i * layer_h
        y0 = y1 - layer_h + 6
        colour = groups[i] % len(BAND)
        draw.rounded_rectangle((left, y0, right, y1), radius=10, fill=BAND[colour], outline=PALETTE[colour], width=2)
        c.text(left + 18, y0 + layer_h / 2 + 3, tr(item.label), 23, bold=True)
        if item.detail:
            c.text(right - 16, y0 + layer_h / 2 + 3, tr(item.detail), 18, fill=MUTED, align="right")
        if item.total:  # a bracket from the bottom to the top of this layer: everything below is in this price
            g = groups[i]
            bx = right + 28 + g * 34
            ink = PALETTE[g % len(PALETTE)]
            draw.line((bx, bottom, bx, y0), fill=ink, width=5)
            draw.line((bx - 12, bottom, bx, bottom), fill=ink, width=5)
            label_x = right + 28 + prices * 34 + 8
            draw.line((bx - 12, y0, label_x - 6, y0), fill=ink, width=3)
            c.text(label_x, y0 + 10, tr(item.total), 30, bold=True, fill=ink)
    if d.note:
        c.text(left, H - 26, tr(d.note), 20, fill=MUTED)
    return c.png()
