"""The web dashboard's rules: who may sign in, and what each viewer may see and change.

- ``/dashboard`` in a staff chat or an admin's chat (``DashboardRole``) answers with a sign-in
  link valid ``LINK_SECONDS``, usable once. Only a SHA-256 of the token is stored.
- Opening the link (``open_link``) or Telegram's signed Mini App init data (``open_telegram``,
  checked per Telegram's docs) starts a session of ``SESSION_SECONDS`` with its own CSRF token.
- Every request finds its ``Viewer`` again from the session: staff are staff while their chat is
  linked, admins while they are in ``ADMIN_IDS`` / ``WHATSAPP_ADMIN_NUMBERS``. Staff see their own
  startup's leads only; a lead that is not theirs does not exist for them (``None`` → 404).
- A move on the page is ``LeadService.act``, the call a lead-card button makes in chat: the
  same rules, the same messages to the owner.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import secrets
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlsplit

from ..config import Settings
from ..core.funnel import Filters, Stage
from ..core.leads import DECLINE_REASONS, LOST_REASONS, actions_for, undoable_move
from ..core.messages import Inbound, InKind, Menu, Outbound, Say
from ..core.reminders import IST_OFFSET, quiet_hours
from ..core.segments import Vocabulary
from ..core.session import N_, Texts, Tr
from ..storage.dashboard import BoardLead, BroadcastLine, Grant, LeadNote, SqliteDashboard
from ..storage.leads import LeadRecord, Staff
from ..storage.outbox import Outgoing
from .broadcast import admin_lang
from .clock import Clock
from .conversation import Reply
from .dispatch import Who
from .leads import LeadService, iso_india, spreadsheet_safe
from .stats import StatsService

log = logging.getLogger(__name__)

LINK_SECONDS = 15 * 60
SESSION_SECONDS = 12 * 3600
INIT_DATA_MAX_AGE = 3600  # Telegram's init data older than this opens nothing
CLOCK_SKEW = 60  # an auth_date this far in the future is still accepted
SIGN_IN_LINK = N_("Your dashboard: open this link to sign in. It works once, for {minutes} minutes.\n{url}")
FOLLOW_UP_TODAY = N_("⏰ Follow-up today: lead #{id}, {business}.\n{url}")
NOTE_MAX = 1000  # characters of a staff note
OPEN_STATUSES = ("offered", "accepted", "contacted", "listed")  # a lead still being worked on: its follow-up is due
CATCH_UP_DAYS = 2  # a follow-up day missed while the bot was down is still reminded this many days later
EXPORT_HEADER = ("lead_id", "business", "owner", "state", "sector", "language", "score", "status", "offered_at", "accepted_at",
                 "follow_up", "note")


def india_today(now: float) -> dt.date:
    """The day it is in India at ``now``."""
    return dt.datetime.fromtimestamp(int(now) + IST_OFFSET, dt.timezone.utc).date()


def india_midnight(day: dt.date) -> int:
    """The Unix time at which ``day`` begins in India."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()) - IST_OFFSET


def parse_day(raw: str | None) -> dt.date | None:
    """A date input's value (YYYY-MM-DD), or ``None`` for an empty or malformed one."""
    if not raw or len(raw) != 10:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class BoardFilters:
    """What the board (and its export) shows: every field optional."""

    status: str | None = None
    state: str | None = None
    sector: str | None = None
    lang: str | None = None
    min_score: int | None = None
    offered_from: dt.date | None = None
    offered_to: dt.date | None = None  # inclusive


def token_hash(token: str) -> str:
    """What is stored for a token: its SHA-256 (a copy of the database opens nothing)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_init_data(init_data: str, bot_token: str, now: int, max_age: int = INIT_DATA_MAX_AGE) -> dict | None:
    """The Telegram user in Mini App ``init_data`` if it is signed with ``bot_token`` and fresh; else ``None``.

    As Telegram's docs say: the data-check-string is every field but ``hash`` as ``key=value``,
    sorted by key, joined by newlines; the secret key is HMAC-SHA256 of the bot token keyed with
    "WebAppData"; ``hash`` must be the hex HMAC-SHA256 of the data-check-string under that key.
    """
    if not bot_token or not init_data or len(init_data) > 8192:
        return None
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    fields = dict(pairs)
    if len(fields) != len(pairs):  # a key given twice: which one was signed?
        return None
    given = fields.pop("hash", "")
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if not given or not hmac.compare_digest(expected, given.lower()):
        return None
    try:
        auth_date = int(fields.get("auth_date", ""))
        user = json.loads(fields.get("user", ""))
    except ValueError:
        return None
    if not isinstance(user, dict) or not isinstance(user.get("id"), int):
        return None
    if now - auth_date > max_age or auth_date - now > CLOCK_SKEW:
        return None
    return user


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the page: their session, staff link and admin rights, as of this request."""

    session: str  # the session token's hash
    csrf: str
    lang: str
    staff: Staff | None
    admin: bool


@dataclass(frozen=True)
class LeadPage:
    """One lead as its startup's staff see it on the page."""

    lead: LeadRecord
    card: str  # the chat's lead card (chat HTML: what people typed is escaped)
    timeline: list[dict]
    actions: tuple[str, ...]  # what the chat offers for its status (acc, dec, con, lst, ord, lost)
    note: LeadNote = LeadNote()
    undo: str = ""  # the chat's ↩️ Undo action ("undo.<history id>") while the last step can be taken back


@dataclass(frozen=True)
class BroadcastReport:
    """A broadcast and its delivery counts."""

    line: BroadcastLine
    counts: dict[str, int]


class DashboardService:
    """Sign-in, sessions and the pages' data; see the module docstring."""

    reasons = {"dec": DECLINE_REASONS, "lost": LOST_REASONS}

    def __init__(self, repo: SqliteDashboard, leads: LeadService, stats: StatsService, vocab: Vocabulary, texts: Texts,
                 clock: Clock, settings: Settings):
        self.repo, self.leads, self.stats, self.vocab = repo, leads, stats, vocab
        self.texts, self.clock, self.settings = texts, clock, settings

    def _now(self) -> int:
        return int(self.clock.now())

    @property
    def base_url(self) -> str:
        """Where the dashboard is reached: ``DASHBOARD_URL``, else the webhook's host, else this machine."""
        s = self.settings
        if s.dashboard_url:
            return s.dashboard_url.rstrip("/")
        if s.webhook_url:
            parts = urlsplit(s.webhook_url)
            return f"{parts.scheme}://{parts.netloc}"
        return f"http://localhost:{s.dashboard_port or s.whatsapp_port}"

    @property
    def secure(self) -> bool:
        """Whether the cookie is marked Secure (the dashboard is served over https)."""
        return self.base_url.startswith("https://")

    def is_admin(self, channel: str, chat_ref: str, platform_user_id: int | None) -> bool:
        """An admin as the chat roles define one: a Telegram id in ADMIN_IDS, a number in WHATSAPP_ADMIN_NUMBERS."""
        if channel == "whatsapp":
            return chat_ref in self.settings.whatsapp_admin_numbers
        return platform_user_id is not None and platform_user_id in self.settings.admin_ids

    # ------------------------------------------------------------- signing in
    async def issue_link(self, grant: Grant) -> str:
        """A one-time sign-in link for ``grant`` (the token itself is never stored)."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        await self.repo.add("link", token_hash(token), Grant(grant.channel, grant.chat_ref, grant.platform_user_id, grant.lang,
                                                             None, now + LINK_SECONDS), now)
        return f"{self.base_url}/dashboard/login?t={token}"

    async def _open(self, grant: Grant) -> str:
        token = secrets.token_urlsafe(32)
        now = self._now()
        session = Grant(grant.channel, grant.chat_ref, grant.platform_user_id, grant.lang, secrets.token_urlsafe(24),
                        now + SESSION_SECONDS)
        await self.repo.add("session", token_hash(token), session, now)
        log.info("dashboard session opened for a %s chat", grant.channel)
        return token

    async def open_link(self, token: str) -> str | None:
        """Spend a sign-in link: a new session token, or ``None`` (unknown, used or expired)."""
        if not token or len(token) > 100:
            return None
        grant = await self.repo.spend_link(token_hash(token), self._now())
        if grant is None or await self._roles(grant) == (None, False):
            return None
        return await self._open(grant)

    async def open_telegram(self, init_data: str) -> str | None:
        """A session for the staff member or admin Telegram's signed init data names; ``None`` if forged,
        stale, or neither staff nor admin."""
        user = check_init_data(init_data, self.settings.telegram_token, self._now())
        if user is None:
            return None
        lang = "hi" if str(user.get("language_code") or "").startswith("hi") else "en"
        grant = Grant("telegram", str(user["id"]), user["id"], lang)
        staff, admin = await self._roles(grant)
        if staff is None and not admin:
            return None
        return await self._open(Grant(grant.channel, grant.chat_ref, grant.platform_user_id, staff.lang if staff else lang))

    async def _roles(self, grant: Grant) -> tuple[Staff | None, bool]:
        staff = await self.leads.repo.staff(grant.channel, grant.chat_ref)
        return staff, self.is_admin(grant.channel, grant.chat_ref, grant.platform_user_id)

    async def viewer(self, token: str | None) -> Viewer | None:
        """The viewer of a request with this session cookie; ``None`` if there is no live session or
        they are no longer staff or admin."""
        if not token or len(token) > 100:
            return None
        hashed = token_hash(token)
        grant = await self.repo.session(hashed, self._now())
        if grant is None:
            return None
        staff, admin = await self._roles(grant)
        if staff is None and not admin:
            return None
        return Viewer(hashed, grant.csrf or "", grant.lang, staff, admin)

    async def set_lang(self, viewer: Viewer, lang: str) -> None:
        """The viewer switched the page's language."""
        if lang in ("en", "hi"):
            await self.repo.set_lang(viewer.session, lang)

    async def sign_out(self, viewer: Viewer) -> None:
        """End the viewer's session."""
        await self.repo.end(viewer.session)

    # ------------------------------------------------------------- staff
    async def board(self, viewer: Viewer, filters: BoardFilters = BoardFilters(), *, with_dates: bool = False) -> list[BoardLead]:
        """The viewer's startup's leads, filtered."""
        if viewer.staff is None:
            return []
        f = filters
        return await self.repo.board(
            viewer.staff.startup_id, status=f.status, state=f.state, sector=f.sector, lang=f.lang, min_score=f.min_score,
            since=india_midnight(f.offered_from) if f.offered_from else None,
            until=india_midnight(f.offered_to + dt.timedelta(days=1)) if f.offered_to else None, with_dates=with_dates)

    def today(self) -> dt.date:
        """Today in India."""
        return india_today(self.clock.now())

    async def overdue(self, viewer: Viewer) -> list[BoardLead]:
        """The viewer's startup's open leads whose follow-up day has passed."""
        if viewer.staff is None:
            return []
        return await self.repo.overdue(viewer.staff.startup_id, self.today().isoformat(), OPEN_STATUSES)

    @staticmethod
    def _by(viewer: Viewer) -> str:
        assert viewer.staff is not None
        return f"{viewer.staff.channel}:{viewer.staff.chat_ref}"

    async def set_note(self, viewer: Viewer, lead_id: int, text: str) -> bool | None:
        """Write or replace the startup's note on its lead (trimmed; empty clears it). ``None`` if the lead
        is not the viewer's, ``False`` if the note is longer than ``NOTE_MAX``."""
        if await self.lead(viewer, lead_id) is None:
            return None
        text = text.replace("\r\n", "\n").strip()
        if len(text) > NOTE_MAX:
            return False
        assert viewer.staff is not None
        await self.repo.set_note(lead_id, viewer.staff.startup_id, text or None, self._by(viewer), self._now())
        log.info("lead %d: note %s on the dashboard", lead_id, "written" if text else "cleared")  # never the note itself
        return True

    async def set_follow_up(self, viewer: Viewer, lead_id: int, raw: str) -> bool | None:
        """Set the follow-up day (``YYYY-MM-DD``, today or later, within a year; empty clears it). ``None``
        if the lead is not the viewer's, ``False`` for a day that is malformed, past or too far."""
        if await self.lead(viewer, lead_id) is None:
            return None
        day = parse_day(raw.strip())
        today = self.today()
        if raw.strip() and (day is None or day < today or day > today + dt.timedelta(days=366)):
            return False
        assert viewer.staff is not None
        await self.repo.set_follow_up(lead_id, viewer.staff.startup_id, day.isoformat() if day else None, self._by(viewer),
                                      self._now())
        return True

    async def export_csv(self, viewer: Viewer, filters: BoardFilters) -> str | None:
        """What the board shows for ``filters`` as CSV (UTF-8 with a BOM, so Excel reads Hindi), one row per
        lead; cells a spreadsheet would run as a formula are made text. ``None`` for a viewer who is not staff."""
        if viewer.staff is None:
            return None
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out)
        writer.writerow(EXPORT_HEADER)
        for lead in await self.board(viewer, filters, with_dates=True):
            p = lead.profile
            writer.writerow([spreadsheet_safe(cell) for cell in [
                lead.id, p.get("business_name", ""), p.get("owner_name", ""), lead.state or "", lead.sector or "", lead.lang,
                lead.score, lead.status, iso_india(lead.offered_at), iso_india(lead.accepted_at), lead.follow_up or "",
                lead.note or "",
            ]])
        return out.getvalue()

    async def remind_follow_ups(self) -> int:
        """The periodic job: on a follow-up's day (India time, from the morning on), each linked staff chat of
        the lead's startup is told once (the outbox's dedup key is per lead, day and chat). How many were new."""
        now = self._now()
        if quiet_hours(now):
            return 0
        today = india_today(now)
        first = (today - dt.timedelta(days=CATCH_UP_DAYS)).isoformat()
        due = await self.repo.due_follow_ups(first, today.isoformat(), OPEN_STATUSES)
        if not due:
            return 0
        added = 0
        async with self.leads.db.transaction() as conn:
            for item in due:
                items = []
                for staff in await self.leads.repo.staff_chats(conn, item.startup_id):
                    t = Tr(staff.lang, self.texts)
                    text = t._(FOLLOW_UP_TODAY, id=item.lead_id, business=t.esc(item.business or "—"),
                               url=t.esc(f"{self.base_url}/dashboard/lead/{item.lead_id}"))
                    items.append(Outgoing(staff.channel, staff.chat_ref, "lead_notice", Say(text),
                                          dedup_key=f"lead:{item.lead_id}:followup:{item.follow_up}:{staff.channel}:{staff.chat_ref}"))
                added += await self.leads.outbox.add(conn, items, now)
        if added:
            log.info("follow-up reminders: %d queued", added)
            self.leads._poke()
        return added

    async def lead(self, viewer: Viewer, lead_id: int) -> LeadPage | None:
        """A lead of the viewer's startup, with its timeline; ``None`` for anyone else's."""
        if viewer.staff is None:
            return None
        lead = await self.leads.repo.get_lead(lead_id)
        if lead is None or lead.startup_id != viewer.staff.startup_id:
            return None
        [card] = await self.leads.view(self._as_seen(viewer), lead.id)
        timeline = await self.repo.history(lead.id, viewer.staff.startup_id)
        note = await self.repo.note(lead.id, viewer.staff.startup_id)
        moves = sorted((row["id"], row["status"], row["at"]) for row in timeline)  # as the chat's undo reads them
        undo = undoable_move(moves, lead.status, self._now())
        return LeadPage(lead, card.text if isinstance(card, Say) else "", timeline, actions_for(lead.status), note,
                        f"undo.{undo}" if undo is not None else "")

    async def act(self, viewer: Viewer, lead_id: int, action: str) -> list[Outbound] | None:
        """A move made on the page: exactly the chat's ``LeadService.act``; ``None`` if the lead is not the viewer's."""
        if viewer.staff is None or await self.lead(viewer, lead_id) is None:
            return None
        return await self.leads.act(self._as_seen(viewer), lead_id, action)

    @staticmethod
    def _as_seen(viewer: Viewer) -> Staff:
        """The staff member, answered in the page's language (the owner is told in theirs, as from chat)."""
        assert viewer.staff is not None
        return replace(viewer.staff, lang=viewer.lang)

    # ------------------------------------------------------------- admins
    async def funnel(self, filters: Filters) -> list[Stage]:
        """The funnel for the owners ``filters`` select."""
        return await self.stats.funnel(filters)

    async def broadcasts(self, limit: int = 20) -> list[BroadcastReport]:
        """The newest broadcasts with their sent/delivered/read/failed/blocked counts."""
        lines = await self.repo.broadcasts(limit)
        counts = await self.repo.delivery_counts([b.id for b in lines])
        return [BroadcastReport(b, counts.get(b.id, {})) for b in lines]


class DashboardRole:
    """``/dashboard`` in chat (a Dispatcher role): a sign-in link for staff and admins, nothing for anyone else."""

    def __init__(self, service: DashboardService):
        self.service = service

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        """The sign-in link, when ``inbound`` is ``/dashboard`` from staff or an admin; else ``None``."""
        if inbound.kind is not InKind.COMMAND or inbound.data != "dashboard":
            return None
        key = who.key
        staff = await self.service.leads.repo.staff(key.channel, key.user_ref)
        admin = self.service.is_admin(key.channel, key.user_ref, who.platform_user_id)
        if staff is None and not admin:
            return None  # an owner: /dashboard is an unknown command, nothing is revealed
        lang = staff.lang if staff is not None else admin_lang(who)
        url = await self.service.issue_link(Grant(key.channel, key.user_ref, who.platform_user_id, lang))
        t = Tr(lang, self.service.texts)
        text = t._(SIGN_IN_LINK, minutes=t.num(LINK_SECONDS // 60), url=t.esc(url))
        return Reply([Say(text), Menu(True)], lang, 0, [])  # and the menu button (Telegram) opens it in the chat
