"""The daily maintenance: what is kept only for a while goes, the WAL is truncated, the file checked.

The runtime runs it once a day (``maintenance`` worker) and logs its report; ``saathi maintain``
runs it on demand and prints the same report. What is kept and for how long is in the README
("Data kept, and for how long").
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..storage.db import Database
from ..storage.maintenance import ANSWER_DAYS, EVENT_DAYS, HELD_DAYS, OUTBOX_DAYS, SqliteMaintenance
from .clock import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass
class MaintenanceReport:
    """What one maintenance run did."""

    seen_pruned: int = 0
    held_expired: int = 0
    early_pruned: int = 0
    outbox_pruned: int = 0
    events_pruned: int = 0
    answers_pruned: int = 0
    checkpoint: tuple[int, int, int] = (0, 0, 0)  # (busy, WAL frames, frames copied)
    integrity: list[str] = field(default_factory=lambda: ["ok"])
    bytes_before: int = 0
    bytes_after: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        """The integrity check found nothing wrong."""
        return self.integrity == ["ok"]

    def lines(self) -> list[str]:
        """The report as an operator reads it (and the log keeps it)."""
        mb = lambda n: f"{n / 1_000_000:,.1f} MB"  # noqa: E731
        busy, frames, _ = self.checkpoint
        out = [
            f"pruned {self.seen_pruned:,} handled update id(s) past their window (Telegram 1 day, WhatsApp 7 days)",
            f"gave up {self.held_expired:,} WhatsApp message(s) held over {HELD_DAYS} days for a user who did not write",
            f"dropped {self.early_pruned:,} WhatsApp status(es) older than {HELD_DAYS} days for a message no record has",
            f"pruned {self.outbox_pruned:,} delivery record(s) older than {OUTBOX_DAYS} days",
            f"pruned {self.events_pruned:,} logged event(s) older than {EVENT_DAYS} days (consents and erasures stay)",
            f"pruned {self.answers_pruned:,} single quiz answer(s) older than {ANSWER_DAYS} days (scores and passes stay)",
            ("WAL checkpoint: " + (f"{frames:,} frame(s) folded in, WAL truncated" if not busy
                                   else "kept from finishing by another reader; tried again tomorrow")),
            "integrity (quick_check): " + ("ok" if self.healthy else "; ".join(self.integrity[:5])),
            "statistics refreshed (PRAGMA optimize)",
            f"database and WAL: {mb(self.bytes_before)} before, {mb(self.bytes_after)} after",
        ]
        if self.rows:
            out.append("rows now: " + ", ".join(f"{table} {count:,}" for table, count in self.rows.items()))
        out.append(f"took {self.seconds:.1f} s")
        return out


class MaintenanceService:
    """Runs the housekeeping of one database (``SqliteMaintenance``) and reports it."""

    def __init__(self, db: Database, clock: Clock | None = None):
        self.storage = SqliteMaintenance(db)
        self.clock = clock or SystemClock()

    async def run_once(self) -> MaintenanceReport:
        """Prune, check, optimise, checkpoint; log each line of the report."""
        began = time.monotonic()
        now = int(self.clock.now())
        report = MaintenanceReport(bytes_before=await self.storage.file_bytes())
        report.seen_pruned = await self.storage.prune_seen(now)
        report.held_expired = await self.storage.expire_held(now)
        report.early_pruned = await self.storage.prune_early_statuses(now)
        report.outbox_pruned = await self.storage.prune_outbox(now)
        report.events_pruned = await self.storage.prune_events(now)
        report.answers_pruned = await self.storage.prune_answers(now)
        report.integrity = await self.storage.quick_check()  # a reader of its own: before the checkpoint needs none
        await self.storage.optimize()
        report.checkpoint = await self.storage.checkpoint()
        report.bytes_after = await self.storage.file_bytes()
        report.rows = await self.storage.counts()
        report.seconds = time.monotonic() - began
        for line in report.lines():
            log.info("maintenance: %s", line)
        if not report.healthy:
            log.error("maintenance: the integrity check found problems; restore the last good backup (see README)")
        return report
