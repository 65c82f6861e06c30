"""Nudges for owners who started a module and went quiet, through the outbox.

Run every 15 minutes by the runtime. The rules are ``core.reminders``; this module
finds the candidates (``storage.reminders``, one indexed query) and enqueues one reminder each, with a dedup key
that makes a second run (or a restart) unable to enqueue the same nudge again.
"""

from __future__ import annotations

import html
import json

from ..core import payloads
from ..core.content import Content
from ..core.messages import Choice, Say
from ..core.reminders import SILENCE, ReminderFacts, quiet_hours, should_nudge
from ..core.session import N_, Texts
from ..storage.outbox import Outgoing, SqliteOutbox
from ..storage.reminders import PAGE, SqliteReminderCandidates
from .clock import Clock

REMINDER = N_("👋 {name}, you were learning “{module}”. A few minutes are enough to finish it. Shall we continue?")
REMINDER_FOOTER = N_("(Send /stop_reminders if you don't want reminders.)")
CONTINUE = N_("Continue")


class ReminderService:
    """Finds owners due a nudge and enqueues it."""

    def __init__(self, candidates: SqliteReminderCandidates, outbox: SqliteOutbox, content: Content, texts: Texts, clock: Clock):
        self.candidates, self.outbox, self.content, self.texts, self.clock = candidates, outbox, content, texts, clock
        self.page_size = PAGE

    async def run_once(self) -> int:
        """Enqueue every reminder due now; returns how many were enqueued."""
        now = int(self.clock.now())
        if quiet_hours(now):
            return 0
        # In pages by user id, so memory stays flat however many owners have gone quiet.
        items: list[Outgoing] = []
        after = 0
        while rows := await self.candidates.page(after, now - SILENCE, self.page_size):
            after = rows[-1]["id"]
            items += [item for row in rows if (item := self._reminder(row, now)) is not None]
        if not items:
            return 0
        return await self.outbox.enqueue(items, now)

    def _reminder(self, row, now: int) -> Outgoing | None:
        """The reminder ``row``'s owner is due now, if any."""
        facts = ReminderFacts(
            last_active=row["last_seen_at"],
            nudges_since_active=row["nudges"],
            last_nudge=row["last_nudge"],
            opted_out=False,
            blocked=False,
            module_in_progress=row["module_id"],
        )
        module = self.content.module(row["module_id"] or "")
        if module is None or not should_nudge(facts, now):
            return None
        lang = row["lang"]
        name = json.loads(row["profile"]).get("owner_name", "")
        text = self.texts.gettext(lang, REMINDER).format(name=html.escape(name, quote=False), module=self.texts.gettext(lang, module.title))
        text += "\n" + self.texts.gettext(lang, REMINDER_FOOTER)
        say = Say(text, (Choice(payloads.Module(module.id).encode(), self.texts.gettext(lang, CONTINUE)),))
        return Outgoing(row["channel"], row["user_ref"], "reminder", say, user_id=row["id"],
                        dedup_key=f"reminder:{row['id']}:{row['last_seen_at']}:{row['nudges'] + 1}")
