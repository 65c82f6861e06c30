"""The funnel for admins: counts and conversions as text, and as a PNG chart.

The chart is drawn with matplotlib (Agg, no display), imported only when a chart is asked
for: it costs ~0.5 s and ~30 MB to load, which a bot that never draws one should not pay.
Chart labels are English: matplotlib does not shape Devanagari conjuncts correctly, and a
broken Hindi label is worse than an English one; the caption is in the admin's language.
"""

from __future__ import annotations

import io

from ..core.content import Content
from ..core.funnel import Filters, Stage, funnel_text, path_of, stages
from ..i18n import Catalogs
from ..storage.db import Database
from ..storage.stats import SqliteStats


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

    def chart(self, funnel: list[Stage], scope: str) -> bytes:
        """The funnel as a PNG: one bar per stage, with its count and share of the first stage."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        funnel = path_of(funnel)
        labels = [stage.title(self.texts, "en") for stage in funnel]
        counts = [stage.count for stage in funnel]
        first = counts[0] if counts else 0
        fig = Figure(figsize=(9, 1.2 + 0.42 * len(funnel)), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        positions = list(range(len(funnel)))
        ax.barh(positions, counts, color=["#1f6f8b" if s.module is None else "#4fa3c7" for s in funnel])
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole owners, also when there are only three
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: self.texts.number("en", int(value))))
        ax.set_xlabel("Owners")
        top = max(counts) if counts and max(counts) else 1
        ax.set_xlim(0, top * 1.25)
        for y, count in zip(positions, counts):
            share = f" ({self.texts.percent('en', count / first)})" if first else ""
            ax.text(count + top * 0.01, y, f"{self.texts.number('en', count)}{share}", va="center", fontsize=9)
        ax.set_title(f"Export Saathi funnel – {scope}", loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()

