"""Leads: created when an owner qualifies, offered to one startup at a time, moved along by its staff.

- ``LeadService.on_events`` runs after each committed owner turn. When consent is given, the
  profile confirmed, the required modules passed and the score reaches the threshold, it creates
  the lead, offers it to a startup and enqueues the lead cards, all in one transaction: the
  cards cannot be lost, and the lead cannot exist without them.
- ``StaffRole`` serves startup staff: ``/start join_<code>`` links a chat with a single-use
  invite, ``/leads`` lists the startup's own leads, and the lead-card buttons
  (``ld:<lead id>:<action>``) accept, decline or move a lead along. Anything on a lead that is
  not the startup's, or not in a state that allows it, is refused politely and changes nothing.
- ``sweep`` runs at start-up and every few minutes: it creates leads a crash kept from being
  created, hands on leads nobody answered within the SLA (and tells the admins), retries the
  unassigned queue, and tells the admins about staff chats that blocked the bot.
Everything addressed to someone other than the person tapping (cards, owner notices, admin
notices) goes through the outbox with a dedup key, so it is delivered once.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import re
import secrets
import statistics
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from ..config import Settings
from ..content import default_content_dir
from ..core import leads as lead_rules
from ..core.content import Content, ContentError
from ..core.leads import (
    FILTERS,
    PAGE_SIZE,
    STATUS_LABELS,
    LeadFacts,
    LeadView,
    ReferralFunnel,
    ScoreItem,
    Startup,
    build_startups,
    choose_startup,
    lead_card,
    leads_page,
    readiness,
    reason_buttons,
    reason_label,
    refusal,
)
from ..core import payloads
from ..core.messages import Choice, Event, Inbound, InKind, Menu, Outbound, Picked, Say
from ..core.session import N_, Texts, Tr
from ..storage.db import Database
from ..storage.leads import LeadRecord, Owner, SqliteLeads, Staff, read_startup_rows
from ..storage.outbox import Outgoing, SqliteOutbox
from ..core.messages import UserKey
from .clock import Clock
from .conversation import Reply
from .dispatch import Who

log = logging.getLogger(__name__)

IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
INVITE_DAYS = 7
ADMIN_CHANNEL = "telegram"
WHATSAPP_CHANNEL = "whatsapp"
# Owner events after which the owner may have just qualified.
TRIGGERS = {"consent_given", "onboarding_confirmed", "quiz_finished", "module_passed", "required_modules_passed", "profile_changed"}
FIRST_SWEEP_WINDOW = 30 * 24 * 3600  # at start-up, owners seen in the last 30 days are checked
_CODE_ALPHABET = string.ascii_lowercase + string.digits

# Owners
OWNER_ACCEPTED = N_(
    "🤝 Good news! <b>{startup}</b>, a partner startup of the program, will contact you soon on {phone} "
    "to help you list on Alibaba.com."
)
OWNER_LISTED = N_(
    "🌐 Your business is now listed on Alibaba.com, with the help of <b>{startup}</b>. Buyers from abroad can find "
    "your products there. Next: answer every buyer's message within 24 hours; {startup} will help you with your first quotes."
)
OWNER_FIRST_ORDER = N_(
    "🎉 Congratulations! <b>{startup}</b> has recorded your first export order. Next: keep the payment on the platform "
    "and the documents exact. To revise them, send /learn."
)
OWNER_LOST = N_(
    "<b>{startup}</b> has closed your case for now; this happens, and it is not the end. Your training and certificate "
    "stay yours. Send /score to see what would make your business more ready."
)
OWNER_NOTICES = {"listed": OWNER_LISTED, "first_order": OWNER_FIRST_ORDER, "lost": OWNER_LOST}
UNDO_SECONDS = lead_rules.UNDO_SECONDS
NOTICE_DELAY = UNDO_SECONDS + 60  # the owner hears of a step only once it can no longer be undone
# Staff
STAFF_WELCOME = N_(
    "✅ This chat is now linked to <b>{startup}</b>. New leads for your startup arrive here as cards: "
    "please accept or decline each within {hours} hours.\n/leads – your leads"
)
STAFF_HELP = N_(
    "You are partner staff of <b>{startup}</b>. Lead cards arrive in this chat: please accept or decline "
    "each within {hours} hours.\n/leads – your leads"
)
ALREADY_LINKED = N_("This chat is already linked to <b>{startup}</b>.\n/leads – your leads")
INVITE_BAD = N_("This invite link does not work: it has expired or was already used. Please ask the program team for a new one.")
ACCEPTED = N_(
    "✅ Lead #{id} is yours. The owner has been told that {startup} will contact them: please call "
    "{owner} soon. Then tap each step as it happens:"
)
DECLINE_ASK = N_("Why are you declining lead #{id}?")
DECLINED = N_("Lead #{id} is declined and goes to another startup. Thank you for answering quickly.")
MOVED = N_("✅ Lead #{id}: {status}.")
NEXT_STEP = N_("Tap the next step when it happens:")
FIRST_ORDER = N_("🎉 Lead #{id}: first export order! Congratulations.")
LOST_ASK = N_("What happened with lead #{id}?")
LOST_DONE = N_("Lead #{id} is marked lost. Thank you for telling us.")
NOT_YOURS = N_("This lead is not assigned to your startup.")
UNDO_LABEL = lead_rules.UNDO_LABEL
UNDONE = N_("↩️ Undone: lead #{id} is back at “{status}”.")
UNDO_TOO_LATE = N_("That step can no longer be undone: only the last step, within {minutes} minutes. Send /leads to see the lead.")
NOT_NOW = N_("That can't be done now: lead #{id} is at “{status}”.")
STALE = N_("That button no longer works. Send /leads to see your leads.")
OFFER_GONE = N_("⏰ Lead #{id} ({business}) was not answered within {hours} hours, so it went to another startup.")
UNLINK_ASK = N_(
    "Unlink this chat from <b>{startup}</b>? Lead cards will no longer come here. "
    "Your startup can link it again with a new invite."
)
UNLINKED = N_("Done. This chat is no longer linked to <b>{startup}</b>, and I have deleted what I kept about the link.")
NOTHING_CHANGED = N_("Okay, nothing has changed.")
WITHDRAWN = N_("Lead #{id} is withdrawn: the owner asked us to erase their data. Please delete their details from your records too.")
# Admins
ADMIN_NO_STARTUP = N_(
    "⚠️ Lead #{id} ({business}; {place}; {sector}; score {score}) has no eligible startup. "
    "It waits in the unassigned queue until a startup can take it."
)
ADMIN_SLA = N_("⏰ {startup} did not answer lead #{id} ({business}) within {hours} hours.")
ADMIN_REASSIGNED = N_("It is now offered to {startup}.")
ADMIN_WAITS = N_("No other startup can take it: it waits in the unassigned queue.")
ADMIN_NO_STAFF = N_(
    "⚠️ Lead #{id} was offered to {startup}, but no staff chat of theirs is linked. "
    "Send them an invite: saathi startups invite {startup_id}"
)
ADMIN_BLOCKED = N_("🚫 A staff chat of {startup} (chat {chat}) has blocked the bot; lead cards no longer reach it.")


def new_code(length: int) -> str:
    """A random code of lowercase letters and digits (safe in a t.me start parameter)."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(length))


def iso_india(seconds: int | None) -> str:
    """A timestamp as ISO 8601 in India time, or "" for none."""
    if seconds is None:
        return ""
    return dt.datetime.fromtimestamp(seconds, IST).isoformat(timespec="seconds")


def write_qr(url: str, path: Path) -> None:
    """``url`` as a QR code PNG at ``path`` (big enough to print on a poster)."""
    import segno

    path.parent.mkdir(parents=True, exist_ok=True)
    segno.make(url, error="m").save(str(path), scale=12, border=4)


@dataclass(frozen=True)
class StartupStats:
    """One startup's numbers for ``saathi leads stats``."""

    startup: Startup
    assigned: int
    accepted: int
    declined: int
    expired: int
    listed: int
    first_order: int
    median_accept_hours: float | None
    referrals: ReferralFunnel


class LeadService:
    """Creates, assigns and moves leads; see the module docstring."""

    def __init__(self, db: Database, outbox: SqliteOutbox, content: Content, texts: Texts, clock: Clock, settings: Settings):
        self.db, self.outbox, self.content, self.texts, self.clock, self.settings = db, outbox, content, texts, clock, settings
        self.repo = SqliteLeads(db)
        self.wake: Callable[[], None] | None = None  # set to the delivery worker's wake() when one runs
        self._swept_at: int | None = None

    @property
    def rules(self) -> lead_rules.Qualification | None:
        """The qualification rules (``None`` leaves leads switched off)."""
        return self.content.qualification

    def _t(self, lang: str) -> Tr:
        return Tr(lang, self.texts)

    def _now(self) -> int:
        return int(self.clock.now())

    def _poke(self) -> None:
        if self.wake is not None:
            self.wake()

    def _hours(self) -> float | int:
        hours = self.settings.lead_sla_hours
        return int(hours) if float(hours).is_integer() else hours

    # ------------------------------------------------------------- the owner's side
    async def on_events(self, user_id: int, key: UserKey, events: list[Event]) -> None:
        """The conversation hook: withdraw on erasure, create the lead when the owner qualifies.

        A failure here must not cost the owner the reply to their message: it is logged, and
        the periodic sweep creates the lead later.
        """
        kinds = {e.kind for e in events}
        try:
            if "delete_my_data" in kinds:  # the lead was withdrawn with the erasure; its staff hear it now
                await self.tell_withdrawn()
            elif kinds & TRIGGERS:
                await self.evaluate(user_id)
        except Exception:
            log.exception("lead check failed for user %s; the sweep will retry", user_id)

    async def evaluate(self, user_id: int) -> int | None:
        """Create and offer the owner's lead if they qualify and have none; its id, else ``None``."""
        if self.rules is None:
            return None
        now = self._now()
        async with self.db.transaction() as conn:
            owner = await self.repo.owner(conn, user_id)
            if owner is None or owner.consent != "given" or not owner.onboarded:
                return None
            if await self.repo.lead_of_user(conn, user_id) is not None:
                return None
            result = readiness(self.rules, self.content, owner.profile, owner.progress)
            if not result.qualifies:
                return None
            referral = await self.repo.startup_by_referral(conn, owner.referral_code)
            lead_id = await self.repo.insert_lead(
                conn, user_id, result.score, [i.as_data() for i in result.items], owner.profile.get("state"),
                owner.profile.get("sector"), owner.lang, referral.id if referral else None, now,
            )
            if lead_id is None:
                return None
            await self.repo.add_history(conn, lead_id, "created", None, "system", f"score {result.score}", now)
            lead = await self.repo.lead(conn, lead_id)
            items, _ = await self._assign(conn, lead, owner, now)
            await self.outbox.add(conn, items, now)
        log.info("lead %s created for user %s (score %s)", lead_id, user_id, result.score)
        self._poke()
        return lead_id

    async def tell_withdrawn(self) -> int:
        """Tell the staff of every lead withdrawn by an erasure (done in the erasing turn itself)
        that it is gone; the sweep retries what a failure left owed. Returns how many leads."""
        now = self._now()
        async with self.db.transaction() as conn:
            leads = await self.repo.owed_notices(conn)
            items: list[Outgoing] = []
            for lead in leads:
                for staff in await self.repo.staff_chats(conn, lead.startup_id):
                    t = self._t(staff.lang)
                    items.append(Outgoing(staff.channel, staff.chat_ref, "lead_notice", Say(t._(WITHDRAWN, id=lead.id)),
                                          dedup_key=f"lead:{lead.id}:withdrawn:{staff.channel}:{staff.chat_ref}"))
                await self.repo.notice_sent(conn, lead.id)
            await self.outbox.add(conn, items, now)
        if leads:
            self._poke()
        return len(leads)

    # ------------------------------------------------------------- assignment
    async def _assign(
        self, conn, lead: LeadRecord, owner: Owner | None, now: int, *, tell_unassigned: bool = True
    ) -> tuple[list[Outgoing], Startup | None]:
        """Offer ``lead`` to the next startup (or queue it); the messages that announce it.

        ``tell_unassigned=False`` leaves telling the admins that nobody can take it to the caller.
        """
        offered = await self.repo.offered_to(conn, lead.id)
        candidates = await self.repo.candidates(conn, now)
        facts = LeadFacts(lead.state, lead.sector, lead.lang)
        chosen = choose_startup(facts, candidates, referral=lead.referral_startup_id, offered=offered)
        profile = owner.profile if owner else {}
        if chosen is None:
            if lead.status != "unassigned":
                await self.repo.set_status(conn, lead.id, "unassigned", now, startup_id=None, offered_at=None)
                await self.repo.add_history(conn, lead.id, "unassigned", None, "system", "no eligible startup", now)
            items = []
            if tell_unassigned:
                items = await self._admins(conn, f"lead:{lead.id}:admin:none:{len(offered)}", now, lambda t: t._(
                    ADMIN_NO_STARTUP, id=lead.id, business=t.esc(profile.get("business_name") or "—"),
                    place=self._place(t, profile), sector=lead_rules.answer_label(t, self.content, "sector", lead.sector),
                    score=t.num(lead.score),
                ))
            return items, None
        by_referral = chosen.id == lead.referral_startup_id
        await self.repo.add_offer(conn, lead.id, chosen.id, now)
        await self.repo.set_status(conn, lead.id, "offered", now, startup_id=chosen.id, offered_at=now)
        await self.repo.add_history(conn, lead.id, "offered", chosen.id, "system", "referral" if by_referral else None, now)
        view = LeadView(
            lead.id, "offered", lead.score, tuple(ScoreItem.from_data(i) for i in lead.reasons), profile,
            owner.passed_modules if owner else (), by_referral, self.settings.lead_sla_hours, lead.lang,
        )
        items = []
        staff_chats = await self.repo.staff_chats(conn, chosen.id)
        for staff in staff_chats:
            card = lead_card(self._t(staff.lang), self.content, view)
            items.append(Outgoing(staff.channel, staff.chat_ref, "lead_card", card,
                                  dedup_key=f"lead:{lead.id}:card:{chosen.id}:{staff.channel}:{staff.chat_ref}"))
        if not staff_chats:
            items += await self._admins(conn, f"lead:{lead.id}:admin:nostaff:{chosen.id}", now, lambda t: t._(
                ADMIN_NO_STAFF, id=lead.id, startup=t.esc(chosen.name), startup_id=chosen.id))
        return items, chosen

    def _place(self, t: Tr, profile: dict) -> str:
        parts = [t.esc(profile.get("district") or ""), lead_rules.answer_label(t, self.content, "state", profile.get("state"))]
        return ", ".join(p for p in parts if p and p != "—") or "—"

    def admin_chats(self) -> dict[str, list[str]]:
        """Where the admins are reached: channel → chat refs. Telegram's ``ADMIN_IDS`` (except in a run on
        WhatsApp alone, which has no Telegram sender) and, with WhatsApp configured, ``WHATSAPP_ADMIN_NUMBERS``."""
        s = self.settings
        chats: dict[str, list[str]] = {}
        if s.admin_ids and (s.telegram_token or not s.whatsapp_token):
            chats[ADMIN_CHANNEL] = sorted(str(a) for a in s.admin_ids)
        if s.whatsapp_admin_numbers and s.whatsapp_token:
            chats[WHATSAPP_CHANNEL] = sorted(s.whatsapp_admin_numbers)
        return chats

    async def _admins(self, conn, key: str, now: int, text: Callable[[Tr], str]) -> list[Outgoing]:
        """One notice to each admin on each channel, in their language where they have talked to the bot
        (else English). Each has its own dedup key (Telegram's as before: ``<key>:<id>``)."""
        items = []
        for channel, refs in self.admin_chats().items():
            langs = await self.repo.admin_langs(conn, channel, refs)
            for ref in refs:
                dedup = f"{key}:{ref}" if channel == ADMIN_CHANNEL else f"{key}:{channel}:{ref}"
                items.append(Outgoing(channel, ref, "admin_notice", Say(text(self._t(langs.get(ref, "en")))), dedup_key=dedup))
        return items

    # ------------------------------------------------------------- the sweep
    async def sweep(self) -> Counter:
        """Catch up: missed leads, answers overdue past the SLA, the unassigned queue, blocked staff chats."""
        now = self._now()
        report: Counter = Counter()
        since = now - FIRST_SWEEP_WINDOW if self._swept_at is None else self._swept_at - 3600
        self._swept_at = now
        if self.rules is not None:
            for user_id in await self.repo.owners_to_check(self.rules.required_modules, since):
                if await self.evaluate(user_id) is not None:
                    report["created"] += 1
        cutoff = now - int(self.settings.lead_sla_hours * 3600)
        for lead_id in await self.repo.overdue(cutoff):
            if await self._expire(lead_id, cutoff, now):
                report["expired"] += 1
        for lead_id in await self.repo.unassigned():
            if await self._retry(lead_id, now):
                report["assigned"] += 1
        report["blocked"] = await self._report_blocked(now)
        report["withdrawn"] = await self.tell_withdrawn()
        report = +report
        if report:
            log.info("lead sweep: %s", dict(report))
            self._poke()
        return report

    async def _expire(self, lead_id: int, cutoff: int, now: int) -> bool:
        async with self.db.transaction() as conn:
            lead = await self.repo.lead(conn, lead_id)
            if lead is None or lead.status != "offered" or (lead.offered_at or now) > cutoff:
                return False
            late = lead.startup_id
            await self.repo.close_offer(conn, lead.id, late, "expired", None, now)
            await self.repo.add_history(conn, lead.id, "expired", late, "system", f"no answer in {self._hours()} h", now)
            owner = await self.repo.owner(conn, lead.user_id) if lead.user_id else None
            profile = owner.profile if owner else {}
            items, chosen = await self._assign(conn, lead, owner, now, tell_unassigned=False)
            names = await self.repo.startup_names(conn, [late])
            for staff in await self.repo.staff_chats(conn, late):
                t = self._t(staff.lang)
                text = t._(OFFER_GONE, id=lead.id, business=t.esc(profile.get("business_name") or "—"), hours=t.num(self._hours()))
                items.append(Outgoing(staff.channel, staff.chat_ref, "lead_notice", Say(text),
                                      dedup_key=f"lead:{lead.id}:gone:{late}:{staff.channel}:{staff.chat_ref}"))

            def notice(t: Tr) -> str:
                head = t._(ADMIN_SLA, startup=t.esc(names.get(late, late)), id=lead.id,
                           business=t.esc(profile.get("business_name") or "—"), hours=t.num(self._hours()))
                tail = t._(ADMIN_REASSIGNED, startup=t.esc(chosen.name)) if chosen else t._(ADMIN_WAITS)
                return f"{head} {tail}"

            items += await self._admins(conn, f"lead:{lead.id}:admin:sla:{late}", now, notice)
            await self.outbox.add(conn, items, now)
        return True

    async def _retry(self, lead_id: int, now: int) -> bool:
        async with self.db.transaction() as conn:
            lead = await self.repo.lead(conn, lead_id)
            if lead is None or lead.status != "unassigned":
                return False
            owner = await self.repo.owner(conn, lead.user_id) if lead.user_id else None
            items, chosen = await self._assign(conn, lead, owner, now)
            await self.outbox.add(conn, items, now)
        return chosen is not None

    async def _report_blocked(self, now: int) -> int:
        async with self.db.transaction() as conn:
            rows = await self.repo.newly_blocked_staff(conn)
            items: list[Outgoing] = []
            for row in rows:
                await self.repo.mark_staff_blocked(conn, row["channel"], row["chat_ref"], row["last_row"], now)
                items += await self._admins(
                    conn, f"staff:{row['channel']}:{row['chat_ref']}:blocked:{row['last_row']}", now,
                    lambda t, row=row: t._(ADMIN_BLOCKED, startup=t.esc(row["name"]), chat=t.esc(row["chat_ref"])),
                )
            await self.outbox.add(conn, items, now)
        return len(rows)

    # ------------------------------------------------------------- staff
    async def join(self, who: Who, code: str) -> Reply:
        """``/start join_<code>``: link this chat to the invite's startup (single use, 7 days)."""
        lang = "hi" if (who.lang_hint or "").lower().startswith("hi") else "en"
        t = self._t(lang)
        outcome, startup_id = "unknown", None
        if code.isascii() and code.isalnum() and len(code) <= 40:
            outcome, startup_id = await self.repo.redeem_invite(code, who.key.channel, who.key.user_ref, None, lang, self._now())
        startup = await self.repo.startup(startup_id) if startup_id else None
        if outcome == "linked" and startup is not None:
            log.info("a %s chat was linked to startup %s", who.key.channel, startup.id)  # a WhatsApp chat ref is a phone number
            text = t._(STAFF_WELCOME, startup=t.esc(startup.name), hours=t.num(self._hours()))
            return Reply([Say(text), Menu(True)], t.lang, 0, [])  # the chat's menu button now opens the dashboard
        elif outcome == "again" and startup is not None:
            staff = await self.repo.staff(who.key.channel, who.key.user_ref)
            t = self._t(staff.lang) if staff else t
            text = t._(ALREADY_LINKED, startup=t.esc(startup.name))
        else:
            text = t._(INVITE_BAD)
        return Reply([Say(text)], t.lang, 0, [])

    def unlink_question(self, staff: Staff) -> list[Outbound]:
        """``/delete_my_data`` in a staff chat: ask before unlinking it (the buttons name this link)."""
        t = self._t(staff.lang)
        yes, no = payloads.Unlink("yes", staff.linked_at), payloads.Unlink("no", staff.linked_at)
        return [Say(t._(UNLINK_ASK, startup=t.esc(staff.startup_name)),
                    (Choice(yes.encode(), t._("Yes")), Choice(no.encode(), t._("No"))), columns=2)]

    async def unlink(self, staff: Staff, answer: payloads.Unlink) -> list[Outbound]:
        """The answer to ``unlink_question``: unlink the chat, or leave it as it is."""
        t = self._t(staff.lang)
        if answer.linked_at != staff.linked_at:  # asked about an earlier link of this chat
            return [refusal(t, STALE)]
        if answer.answer == "no":
            return [Picked(t._("No")), Say(t._(NOTHING_CHANGED))]
        if not await self.repo.unlink_staff(staff.channel, staff.chat_ref, staff.linked_at):
            return [refusal(t, STALE)]
        log.info("a staff chat of startup %s was unlinked at its own request", staff.startup_id)
        return [Picked(t._("Yes")), Say(t._(UNLINKED, startup=t.esc(staff.startup_name))), Menu(False)]

    async def set_language(self, staff: Staff, wanted: str) -> Staff:
        """``/language`` in a staff chat: ``hi`` or ``en`` if named, otherwise the other one."""
        word = wanted.strip().lower()
        lang = "hi" if word in ("hi", "hindi", "हिन्दी", "हिंदी") else "en" if word in ("en", "english") else (
            "en" if staff.lang == "hi" else "hi")
        await self.repo.set_staff_lang(staff.channel, staff.chat_ref, lang)
        return replace(staff, lang=lang)

    async def help(self, staff: Staff) -> list[Outbound]:
        """What staff can do here."""
        t = self._t(staff.lang)
        return [Say(t._(STAFF_HELP, startup=t.esc(staff.startup_name), hours=t.num(self._hours())))]

    async def page(self, staff: Staff, status_filter: str = "all", page: int = 0) -> list[Outbound]:
        """``/leads``: the startup's own leads, newest first, ``PAGE_SIZE`` a page."""
        t = self._t(staff.lang)
        status = None if status_filter == "all" else status_filter
        rows, total = await self.repo.page(staff.startup_id, status, PAGE_SIZE, page * PAGE_SIZE)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if page >= pages:  # the list shrank since the button was drawn
            page = pages - 1
            rows, total = await self.repo.page(staff.startup_id, status, PAGE_SIZE, page * PAGE_SIZE)
        startup = await self.repo.startup(staff.startup_id)
        funnel = await self.repo.funnel(startup, self.rules.required_modules if self.rules else ()) if startup else ReferralFunnel()
        return [leads_page(t, self.content, staff.startup_name, rows, status_filter=status_filter, page=page, pages=pages, referrals=funnel)]

    async def view(self, staff: Staff, lead_id: int) -> list[Outbound]:
        """A lead's card with its current buttons, for its own startup only."""
        t = self._t(staff.lang)
        lead = await self.repo.get_lead(lead_id)
        if lead is None or lead.startup_id != staff.startup_id:
            return [refusal(t, NOT_YOURS)]
        async with self.db.transaction() as conn:  # a consistent read of the owner, their progress and the moves
            owner = await self.repo.owner(conn, lead.user_id) if lead.user_id else None
            moves = await self.repo.moves(conn, lead.id, staff.startup_id)
        view = LeadView(
            lead.id, lead.status, lead.score, tuple(ScoreItem.from_data(i) for i in lead.reasons), owner.profile if owner else {},
            owner.passed_modules if owner else (), lead.referral_startup_id == staff.startup_id, self.settings.lead_sla_hours,
            lead.lang, tuple((status, at) for _, status, at in moves),
        )
        return [lead_card(t, self.content, view)]

    async def act(self, staff: Staff, lead_id: int, action: str) -> list[Outbound]:
        """A lead-card button: accept, decline (with a reason), contacted, listed, first order, lost, undo.

        The facts are loaded, the rules decide (``decide_staff_tap``, pure), and what they decided is
        stored with the messages it causes, in one transaction; then the staff member is answered.
        """
        now = self._now()
        async with self.db.transaction() as conn:
            lead = await self.repo.lead(conn, lead_id)
            moves = await self.repo.moves(conn, lead.id, staff.startup_id) if lead and action.startswith("undo.") else ()
            decision = lead_rules.decide_staff_tap(action, lead.status if lead else None, lead.startup_id if lead else None,
                                                   staff.startup_id, moves, now)
            owner, move, items = await self._store(conn, staff, lead, decision, now)
        if items:
            self._poke()
        return await self._answer(staff, lead, action, decision, owner, move)

    async def _store(self, conn, staff: Staff, lead: LeadRecord | None, decision: lead_rules.StaffDecision,
                     now: int) -> tuple[Owner | None, int, list[Outgoing]]:
        """Persist ``decision`` on the open transaction: (the owner, the new history row, the messages queued)."""
        if decision.kind in ("refuse", "view", "ask_reason"):
            return None, 0, []  # nothing changes
        actor = f"staff:{staff.channel}:{staff.chat_ref}"
        if decision.kind == "undo":
            await self.repo.undo_move(conn, decision.move_id, lead.id, decision.target, actor, now)
            await self.repo.drop_unsent(conn, f"lead:{lead.id}:owner:{lead.status}:{staff.startup_id}")
            return None, 0, []
        owner = await self.repo.owner(conn, lead.user_id) if lead.user_id else None
        target, reason, move = decision.target, decision.reason, 0
        items: list[Outgoing] = []
        if decision.kind == "accept":
            await self.repo.close_offer(conn, lead.id, staff.startup_id, "accepted", None, now)
            await self.repo.set_status(conn, lead.id, "accepted", now)
            await self.repo.add_history(conn, lead.id, "accepted", staff.startup_id, actor, None, now)
            if owner is not None:
                items.append(self._owner_notice(owner, lead, staff))
        elif decision.kind == "decline":
            await self.repo.close_offer(conn, lead.id, staff.startup_id, "declined", reason, now)
            await self.repo.add_history(conn, lead.id, "declined", staff.startup_id, actor, reason, now)
            items, _ = await self._assign(conn, lead, owner, now)
        else:
            await self.repo.set_status(conn, lead.id, target, now)
            move = await self.repo.add_history(conn, lead.id, target, staff.startup_id, actor, reason or None, now)
            if owner is not None and target in OWNER_NOTICES:  # news to the owner, once it can no longer be undone
                items.append(replace(self._owner_notice(owner, lead, staff, target), not_before=now + NOTICE_DELAY))
        await self.outbox.add(conn, items, now)
        return owner, move, items

    async def _answer(self, staff: Staff, lead: LeadRecord | None, action: str, decision: lead_rules.StaffDecision,
                      owner: Owner | None, move: int) -> list[Outbound]:
        """What the staff member who tapped sees."""
        t = self._t(staff.lang)
        if decision.kind == "refuse":
            if decision.why == "not_now":
                return [refusal(t, NOT_NOW, id=lead.id, status=t._(STATUS_LABELS.get(lead.status, lead.status)))]
            if decision.why == "too_late":
                return [refusal(t, UNDO_TOO_LATE, minutes=t.num(UNDO_SECONDS // 60))]
            return [refusal(t, NOT_YOURS if decision.why == "not_yours" else STALE)]
        if decision.kind == "view":
            return await self.view(staff, lead.id)
        if decision.kind == "ask_reason":  # ask why first; nothing changed yet
            question = DECLINE_ASK if decision.reason == "dec" else LOST_ASK
            return [Say(t._(question, id=lead.id), reason_buttons(t, lead.id, decision.reason), columns=1)]
        if decision.kind == "undo":
            log.info("lead %s: step %s undone by startup %s", lead.id, lead.status, staff.startup_id)
            buttons = lead_rules.action_buttons(t, lead.id, decision.target)
            text = t._(UNDONE, id=lead.id, status=t._(STATUS_LABELS.get(decision.target, decision.target)))
            return [Picked(t._(UNDO_LABEL)), Say(f"{text}\n{t._(NEXT_STEP)}" if buttons else text, buttons, columns=2)]
        out = self._after(t, staff, lead.id, action.partition(".")[0], decision.reason, decision.target, owner)
        if decision.undoable:  # the last message offers to take the step back
            last = out[-1]
            assert isinstance(last, Say)
            undo = Choice(lead_rules.payload(lead.id, f"undo.{move}"), t._(UNDO_LABEL))
            out[-1] = replace(last, choices=(*last.choices, undo))
        return out

    def _owner_notice(self, owner: Owner, lead: LeadRecord, staff: Staff, target: str = "accepted") -> Outgoing:
        """The owner's message about a step of their lead, in their language, naming the startup."""
        o = self._t(owner.lang)
        if target == "accepted":
            phone = o.phone(owner.profile.get("phone"))
            text = o._(OWNER_ACCEPTED, startup=o.esc(staff.startup_name), phone=o.esc(phone or "—"))
        else:
            text = o._(OWNER_NOTICES[target], startup=o.esc(staff.startup_name))
        return Outgoing(owner.channel, owner.user_ref, "lead_notice", Say(text), user_id=owner.user_id,
                        dedup_key=f"lead:{lead.id}:owner:{target}:{staff.startup_id}")

    def _after(
        self, t: Tr, staff: Staff, lead_id: int, base: str, reason: str, target: str, owner: Owner | None
    ) -> list[Outbound]:
        """What the staff member who tapped sees: the tapped card marked, and what comes next."""
        label = t._(reason_label(base, reason) or "") if reason else t._(lead_rules.ACTION_LABELS[base])
        out: list[Outbound] = [Picked(label)]
        if target == "accepted":
            name = t.esc((owner.profile.get("owner_name") if owner else None) or "—")
            text = t._(ACCEPTED, id=lead_id, startup=t.esc(staff.startup_name), owner=name)
            out.append(Say(text, lead_rules.action_buttons(t, lead_id, "accepted"), columns=2))
        elif target == "declined":
            out.append(Say(t._(DECLINED, id=lead_id)))
        elif target == "lost":
            out.append(Say(t._(LOST_DONE, id=lead_id)))
        elif target == "first_order":
            out.append(Say(t._(FIRST_ORDER, id=lead_id)))
        else:
            buttons = lead_rules.action_buttons(t, lead_id, target)
            text = t._(MOVED, id=lead_id, status=t._(STATUS_LABELS[target]))
            out.append(Say(f"{text}\n{t._(NEXT_STEP)}" if buttons else text, buttons, columns=2))
        return out

    # ------------------------------------------------------------- the registry (CLI, demo)
    def _ids(self, field: str) -> list[str]:
        step = next((s for s in self.content.onboarding.steps.values() if s.field == field), None)
        return [o.id for o in step.options] if step else []

    async def import_file(self, path: Path) -> tuple[int, int]:
        """Import or update startups from a YAML or CSV file; (added, updated)."""
        startups = build_startups(read_startup_rows(path), str(path), states=self._ids("state"), sectors=self._ids("sector"))
        return await self.repo.upsert_startups(startups, self._now(), lambda: new_code(8))

    async def load_demo_if_empty(self, path: Path | None = None, *, console_staff: bool = True) -> int:
        """Load the demo startups into an empty registry (the terminal chat); how many were added.

        With ``console_staff`` each demo startup gets a terminal staff chat ``staff-<id>``, so a
        lead card is printed in the terminal and can be answered with ``saathi chat --user staff-<id>``.
        """
        if await self.repo.count_startups():
            return 0
        added, _ = await self.import_file(path or default_content_dir() / "startups.demo.yaml")
        if console_staff:
            for startup in await self.repo.startups():
                await self.repo.link_staff("console", f"staff-{startup.id}", startup.id, startup.languages[0], self._now())
        return added

    async def _startup(self, startup_id: str) -> Startup:
        startup = await self.repo.startup(startup_id)
        if startup is None:
            known = ", ".join(s.id for s in await self.repo.startups()) or "none yet; run saathi startups import FILE"
            raise ContentError("startups", f"id '{startup_id}'", f"is not in the registry (known: {known})")
        return startup

    async def invite(self, startup_id: str) -> tuple[Startup, str, int]:
        """A single-use invite for a startup's staff: (startup, t.me link, expiry time)."""
        startup, links, expires = await self.invite_links(startup_id)
        return startup, links["telegram"], expires

    async def invite_links(self, startup_id: str) -> tuple[Startup, dict[str, str], int]:
        """A single-use invite for a startup's staff: (startup, channel → link, expiry time).

        The t.me link always; with WhatsApp configured (``WHATSAPP_PHONE_NUMBER_ID`` and
        ``WHATSAPP_DISPLAY_NUMBER``) also a wa.me link whose prefilled text ``join_<code>`` is the same
        invite: whichever link is used first links its chat, the other then no longer works.
        """
        startup = await self._startup(startup_id)
        now = self._now()
        code = new_code(16)
        expires = now + INVITE_DAYS * 24 * 3600
        await self.repo.create_invite(code, startup.id, now, expires)
        links = {"telegram": f"https://t.me/{self.settings.bot_username}?start=join_{code}"}
        if self.settings.whatsapp_phone_number_id and self.settings.whatsapp_display_number:
            links["whatsapp"] = f"https://wa.me/{self.settings.whatsapp_display_number}?text=join_{code}"
        return startup, links, expires

    async def referral(self, startup_id: str) -> tuple[Startup, str]:
        """The startup's referral link (a code is made the first time)."""
        startup = await self._startup(startup_id)
        code = startup.referral_code
        if not code:
            code = new_code(8)
            await self.repo.set_referral_code(startup.id, code, self._now())
        return startup, f"https://t.me/{self.settings.bot_username}?start=ref_{code}"

    # ------------------------------------------------------------- reports
    async def stats(self) -> list[StartupStats]:
        """Per startup: offers and their outcomes, stages reached, median time to accept, referrals."""
        offers = await self.repo.offer_rows()
        reached = await self.repo.reached()
        listed = Counter(sid for sid, _ in {(r["startup_id"], r["lead_id"]) for r in reached if r["status"] in ("listed", "first_order")})
        first_order = Counter(r["startup_id"] for r in reached if r["status"] == "first_order")
        funnels = await self.repo.referral_funnels(self.rules.required_modules if self.rules else ())
        out = []
        for startup in await self.repo.startups():
            mine = [o for o in offers if o["startup_id"] == startup.id]
            waits = [o["answered_at"] - o["offered_at"] for o in mine if o["outcome"] == "accepted"]
            out.append(StartupStats(
                startup,
                assigned=len(mine),
                accepted=sum(o["outcome"] == "accepted" for o in mine),
                declined=sum(o["outcome"] == "declined" for o in mine),
                expired=sum(o["outcome"] == "expired" for o in mine),
                listed=listed[startup.id],
                first_order=first_order[startup.id],
                median_accept_hours=statistics.median(waits) / 3600 if waits else None,
                referrals=funnels.get(startup.id, ReferralFunnel()),
            ))
        return out

    async def export_csv(self, out: TextIO) -> int:
        """Every lead as CSV (times in India time, ISO 8601); how many rows were written."""
        writer = csv.writer(out)
        writer.writerow([
            "lead_id", "created_at", "status", "score", "startup_id", "startup", "referral_startup_id", "state", "district",
            "sector", "business", "owner", "phone", "lang", "offered_at", "accepted_at", "contacted_at", "listed_at",
            "first_order_at", "lost_at", "lost_reason", "declined_or_expired",
        ])
        rows = await self.repo.export_rows()
        for r in rows:
            p = r["profile"]
            writer.writerow([spreadsheet_safe(cell) for cell in [
                r["id"], iso_india(r["created_at"]), r["status"], r["score"], r["startup_id"] or "", r["startup_name"] or "",
                r["referral_startup_id"] or "", r["state"] or "", p.get("district", ""), r["sector"] or "", p.get("business_name", ""),
                p.get("owner_name", ""), p.get("phone", ""), r["lang"] or "", iso_india(r["offered_at"]), iso_india(r["accepted_at"]),
                iso_india(r["contacted_at"]), iso_india(r["listed_at"]), iso_india(r["first_order_at"]), iso_india(r["lost_at"]),
                r["lost_reason"] or "", r["passed_on"] or "",
            ]])
        return len(rows)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE_CELL = re.compile(r"\+\d{6,15}")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ (or a tab or CR) gets a
    leading ' so that ``=HYPERLINK(…)`` an owner typed as a business name is never run as a formula.
    A phone number as the bot stores it (+91 and digits) is a number to a spreadsheet, not a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PHONE_CELL.fullmatch(value):
        return "'" + value
    return value


def format_stats(stats: list[StartupStats]) -> str:
    """``saathi leads stats`` as a plain-text table."""
    head = ("startup", "active", "assigned", "accepted", "declined", "expired", "listed", "1st order", "median accept",
            "referred", "onboarded", "core passed", "ref. leads")
    rows = []
    for s in stats:
        median = "—" if s.median_accept_hours is None else f"{s.median_accept_hours:.1f} h"
        r = s.referrals
        rows.append((s.startup.id, "yes" if s.startup.active else "no", s.assigned, s.accepted, s.declined, s.expired, s.listed,
                     s.first_order, median, r.brought, r.onboarded, r.ready, r.leads))
    table = [head, *[tuple(str(v) for v in row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in table]
    return "\n".join(lines) if rows else "No startups in the registry yet: saathi startups import FILE"


# Buttons of the owner conversation and of the admins' wizard are not the staff's. Any other tap in a
# staff chat is the staff's: a lead card's, a /leads page's, the unlink question's, or a forged one (refused).
_OTHERS_BUTTONS = (payloads.Step, payloads.Module, payloads.ProfileEdit, payloads.Wizard, payloads.MorePage, payloads.OwnNumber,
                   payloads.OpenHeld)


class StaffRole:
    """Startup staff in the dispatcher: invites, ``/leads`` and the lead-card buttons.

    Only linked chats get anything startup-related; for everyone else ``/leads`` is an unknown
    command and a lead button is an old button, answered by the owner conversation.
    """

    def __init__(self, service: LeadService):
        self.service = service

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        """A reply for invites and for linked staff's commands and buttons; ``None`` for the rest."""
        command = inbound.data if inbound.kind is InKind.COMMAND else None
        if command == "start" and inbound.text.startswith("join_"):
            return await self.service.join(who, inbound.text[5:])
        is_tap = inbound.kind is InKind.CHOICE
        tapped = payloads.decode(inbound.data) if is_tap else None
        if command not in ("leads", "start", "help", "language", "delete_my_data") and not (
                is_tap and not isinstance(tapped, _OTHERS_BUTTONS)):
            return None  # the common case (an owner writing or tapping) costs no query
        if command in ("start", "help") and inbound.text:
            return None  # /start ref_… and friends belong to the owner conversation
        staff = await self.service.repo.staff(who.key.channel, who.key.user_ref)
        if staff is None:
            return None
        if staff.blocked:
            await self.service.repo.unblock_staff(staff.channel, staff.chat_ref)
        if command == "language":  # staff have their own language: not the owners' onboarding
            staff = await self.service.set_language(staff, inbound.text)
            outputs = await self.service.help(staff)
        elif command == "leads":
            outputs = await self.service.page(staff)
        elif command == "delete_my_data":  # a staff chat's own data is its link: unlink it, not owner onboarding
            outputs = self.service.unlink_question(staff)
        elif command is not None:
            outputs = await self.service.help(staff)
        elif isinstance(tapped, payloads.Unlink):
            outputs = await self.service.unlink(staff, tapped)
        elif isinstance(tapped, payloads.LeadAction):
            outputs = await self.service.act(staff, tapped.lead_id, tapped.action)
        elif isinstance(tapped, payloads.LeadPage) and tapped.status_filter in FILTERS:
            outputs = await self.service.page(staff, tapped.status_filter, tapped.page)
        else:
            outputs = [refusal(self.service._t(staff.lang), STALE)]
        return Reply(outputs, staff.lang, 0, [])
