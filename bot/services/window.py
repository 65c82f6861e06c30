"""WhatsApp's 24-hour customer-service window: free-form, template or wait; and status webhooks.

The delivery worker asks ``plan`` for every outbox row on a channel with a window (WhatsApp):
``None`` (the user wrote within 24 hours: send the message itself), a ``TemplateSend`` (outside
the window, the approved template for the row's kind, in the user's language, its parameters
filled from the owner's profile and the message's module), or ``Held`` (no template: the row
waits, with its reason, until the user writes again). The channel reports every inbound message
(``inbound``: the window opens, held rows go back on the queue) and every status webhook entry
(``statuses``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from ..core import payloads
from ..core.content import Content
from ..core.messages import Say
from ..core.segments import Segment
from ..core.broadcast import written_in
from ..core.session import N_, Texts, Tr
from ..core.templates import WINDOW, TemplateBook, TemplateSend, compose, in_window, message_kind
from ..storage.outbox import OutboxRow
from ..storage.windows import RowFacts, SqliteWindows
from .clock import Clock, SystemClock

log = logging.getLogger(__name__)

FRIEND = N_("friend")  # fills a template's name when the owner gave none
WAITING = N_("<b>Waiting on WhatsApp</b> until the user writes again: {n}")
REASONS = {
    "no_template": N_("no approved template for “{value}”"),
    "template_sent": N_("template “{value}” sent, the full message follows when they answer"),
    "not_approved": N_("template “{value}” refused by WhatsApp (not approved?)"),
    "cannot_fill": N_("template “{value}” could not be filled"),
    "held_back": N_("WhatsApp held it back ({value})"),
}
CHANNELS = ("whatsapp",)
"""Seconds after which a status for a message id no row has is tried once more (it may have
overtaken the sender storing that id)."""


@dataclass(frozen=True)
class Held:
    """The row waits for the user to write; ``reason`` is ``code:value`` (see ``REASONS``)."""

    reason: str


@dataclass(frozen=True)
class DeliveryStatus:
    """One entry of a status webhook: the message id, sent/delivered/read/failed, when, error codes."""

    message_ref: str
    status: str
    at: int
    code: int | None = None
    title: str = ""


def text_lang(say: Say) -> str:
    """The language a message was written in: Hindi when most letters of its buttons (which are the
    bot's own words, never a name someone typed) or, without buttons, of its text are Devanagari."""
    return written_in(" ".join(c.label for c in say.choices) if say.choices else re.sub(r"<[^>]*>", "", say.text))


class ChatWindows:
    """The window rules between the delivery worker, the WhatsApp channel and the database."""

    def __init__(self, repo: SqliteWindows, book: TemplateBook, content: Content, texts: Texts, clock: Clock | None = None,
                 channels: Sequence[str] = CHANNELS):
        self.repo, self.book, self.content, self.texts = repo, book, content, texts
        self.clock = clock or SystemClock()
        self.channels = tuple(channels)
        self.wake: Callable[[], None] | None = None  # the delivery worker's, once it runs

    def applies(self, row: OutboxRow) -> bool:
        """Whether ``row`` goes on a channel with a window (a turn's replies answer the user: always inside)."""
        return row.channel in self.channels and row.kind != "reply"

    async def facts(self, rows: Sequence[OutboxRow]) -> dict[int, RowFacts]:
        """What ``plan`` needs for each row the window applies to, in one query."""
        ids = [row.id for row in rows if self.applies(row)]
        return await self.repo.facts(ids) if ids else {}

    def plan(self, row: OutboxRow, facts: RowFacts | None, now: float) -> TemplateSend | Held | None:
        """Send ``row`` as it is (``None``), as a template, or hold it."""
        facts = facts or RowFacts()
        if in_window(facts.last_inbound, facts.closed_at, now):
            return None
        kind = message_kind(row.kind, row.say, row.user_id)
        template = self.book.for_kind(kind)
        if template is None:
            return Held(f"no_template:{kind}")
        lang = facts.lang if facts.lang in ("hi", "en") else text_lang(row.say)
        result = compose(template, lang, self._values(row.say, facts, lang), row.say)
        if isinstance(result, str):
            log.warning("outbox row %s waits: %s", row.id, result)
            return Held(f"cannot_fill:{template.name}")
        return result

    def closed(self, facts: RowFacts | None, now: float) -> RowFacts:
        """``facts`` as they are once WhatsApp said the window is closed."""
        return replace(facts or RowFacts(), closed_at=int(now))

    def _values(self, say: Say, facts: RowFacts, lang: str) -> dict[str, str | None]:
        module = next((self.content.module(p.module_id) for c in say.choices
                       if isinstance(p := payloads.decode(c.id), payloads.Module)), None)
        return {
            "owner_name": facts.owner_name or facts.business_name or self.texts.gettext(lang, FRIEND),
            "business_name": facts.business_name,
            "module_title": self.texts.gettext(lang, module.title) if module is not None else None,
        }

    # ---- what the worker tells it ------------------------------------------------------------
    async def hold(self, row_id: int, reason: str, *, message_ref: str | None = None, template: str | None = None,
                   channel: str | None = None) -> None:
        """The row waits; with ``message_ref`` (an "open" template went out on ``channel``) its early statuses apply."""
        await self.repo.hold(row_id, reason, message_ref=message_ref, template=template, channel=channel)

    async def mark_closed(self, row: OutboxRow) -> None:
        await self.repo.closed(row.channel, row.chat_ref, int(self.clock.now()))

    async def templated(self, results: Sequence[tuple[int, str]]) -> None:
        await self.repo.templated(results)

    # ---- what the channel tells it -----------------------------------------------------------
    async def inbound(self, channel: str, chat_refs: Iterable[str]) -> dict[str, int]:
        """These chats wrote now: their windows open and what was held for them goes out."""
        released = await self.repo.inbound(channel, chat_refs, int(self.clock.now()))
        if released and self.wake is not None:
            self.wake()
        return released

    async def waiting(self, channel: str, chat_ref: str) -> int:
        """Messages queued for the chat (the ones an "open" template's tap released, say)."""
        return await self.repo.waiting(channel, chat_ref)

    async def statuses(self, channel: str, entries: Sequence[DeliveryStatus]) -> dict[str, int]:
        """Apply status webhook entries, each on its own: one that fails is logged, the others still count.

        A status can overtake its message: WhatsApp may report it before the delivery worker has
        stored the message id the send returned. Such an entry is kept in the database
        (``early``) and applied in the transaction that stores the id, so a restart loses none.
        """
        done: dict[str, int] = {}
        now = int(self.clock.now())
        for entry in entries:
            try:
                outcome = await self.repo.status(channel, entry.message_ref, entry.status, entry.at, entry.code, entry.title,
                                                 now=now)
            except Exception:  # noqa: BLE001 - one bad entry must not cost the others
                log.exception("a WhatsApp status could not be stored; skipped")
                outcome = "error"
            done[outcome] = done.get(outcome, 0) + 1
        self.after_statuses(done)
        return done

    def after_statuses(self, done: dict[str, int]) -> None:
        """Log what statuses did and wake the worker for rows they queued again."""
        if done.get("blocked"):
            log.info("%s WhatsApp user(s) cannot be reached (131026); marked as blocked", done["blocked"])
        if done.get("retry") and self.wake is not None:
            self.wake()

    # ---- for admins --------------------------------------------------------------------------
    async def waiting_text(self, lang: str) -> str:
        """What waits for users to write, by reason, for /stats ("" when nothing does)."""
        held = await self.repo.held()
        total = sum(n for _, _, n in held)
        if not total:
            return ""
        t = Tr(lang, self.texts)
        lines = [t._(WAITING, n=t.num(total))]
        for _channel, reason, n in held:
            code, _, value = reason.partition(":")
            label = t._(REASONS[code], value=value) if code in REASONS else reason
            lines.append(f"• {label}: {t.num(n)}")
        return "\n".join(lines)

    async def reach(self, segment: Segment, channels: Sequence[str]) -> dict[str, int]:
        """Owners ``segment`` reaches per channel, and how many WhatsApp ones are outside the window now."""
        return await self.repo.reach(segment, channels, int(self.clock.now()) - WINDOW + 1)
