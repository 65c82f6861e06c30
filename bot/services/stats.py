"""The funnel for admins: counts and conversions as text, and as a PNG chart.

The chart is drawn with Pillow in the admin's language: Hindi labels are shaped by HarfBuzz
(bot/pictures.py), which matplotlib cannot do, and nothing heavy is loaded to draw it.
"""

from __future__ import annotations

import datetime as dt

from ..core.content import Content
from ..core.funnel import Filters, Stage, funnel_text, path_of, stages
from ..core.session import N_
from ..i18n import Catalogs
from ..pictures import INK, MUTED, Canvas
from ..storage.db import Database
from ..storage.stats import SqliteStats


CHART_TITLE = N_("Export Saathi funnel")
CHART_SCOPE = N_("{scope} · on {date}")
CHART_AXIS = N_("Owners")


class StatsService:
    """Funnel counts, text and chart."""

    def __init__(self, db: Database, content: Content, texts: Catalogs):
        self.repo = SqliteStats(db)
        self.content = content
        self.texts = texts

    async def funnel(self, filters: Filters) -> list[Stage]:
        """The funnel stages for the owners ``filters`` select."""
        modules = [(m.id, m.short) for m in self.content.modules]
        required = self.content.required_modules
        counts = await self.repo.funnel(filters, [m for m, _ in modules], required)
        return stages(counts, modules)

    def text(self, funnel: list[Stage], heading: str, lang: str) -> str:
        """The funnel as a chat message in ``lang``."""
        return funnel_text(funnel, heading, self.texts, lang)

    def chart(self, funnel: list[Stage], scope: str, lang: str = "en", when: dt.date | None = None) -> bytes:
        """The funnel as a PNG in ``lang``: one bar per stage on the path, with its count and its
        share of the first stage; whole-number ticks, the axis named, the filter and date in the title."""
        tr = lambda msgid, **kw: self.texts.gettext(lang, msgid).format(**kw)  # noqa: E731
        funnel = path_of(funnel)
        labels = [stage.title(self.texts, lang) for stage in funnel]
        counts = [stage.count for stage in funnel]
        first = counts[0] if counts else 0
        top = max(counts) if counts and max(counts) else 1
        step = _tick_step(top)
        axis_max = step * -(-top // step)
        W, row, left, right, head = 1100, 56, 330, 150, 120
        H = head + row * len(funnel) + 110
        canvas = Canvas.new(W, H, background=(255, 255, 255))
        draw = canvas.draw
        day = self.texts.date(lang, when or dt.date.today())
        canvas.text(30, 50, tr(CHART_TITLE), 30, bold=True)
        canvas.text(30, 88, tr(CHART_SCOPE, scope=scope, date=day), 20, fill=MUTED)
        plot_w = W - left - right
        bottom = head + row * len(funnel)
        for k in range(0, axis_max // step + 1):  # whole owners on the axis, also when there are three
            x = left + plot_w * (k * step) / axis_max
            draw.line((x, head - 6, x, bottom), fill=(228, 230, 232), width=1)
            canvas.text(x, bottom + 28, self.texts.number(lang, k * step), 17, fill=MUTED, align="center")
        canvas.text(left + plot_w / 2, bottom + 66, tr(CHART_AXIS), 19, bold=True, fill=MUTED, align="center")
        for i, (label, count) in enumerate(zip(labels, counts)):
            y = head + i * row
            canvas.text(left - 16, y + row / 2 + 7, label, 20, align="right")
            width = plot_w * count / axis_max
            draw.rounded_rectangle((left, y + 10, left + max(width, 3), y + row - 10), radius=6,
                                   fill=(31, 111, 139) if i == 0 else (79, 163, 199))
            share = f" ({self.texts.percent(lang, count / first)})" if first else ""
            canvas.text(left + width + 10, y + row / 2 + 7, f"{self.texts.number(lang, count)}{share}", 19)
        draw.line((left, head - 6, left, bottom), fill=INK, width=2)
        return canvas.png()


def _tick_step(top: int) -> int:
    """A round whole step (1, 2, 5, 10, 20, 50 …) giving at most six ticks up to ``top``."""
    step, scale = 1, 1
    while top / step > 6:
        step = next(m * scale for m in (1, 2, 5, 10) if m * scale > step)
        if step == 10 * scale:
            scale *= 10
    return step
