"""Startups, their staff chats, invites, leads, offers and history, in SQLite.

All the SQL of the lead feature lives here. Methods that take ``conn`` run on a transaction the
caller holds (``Database.transaction()``), so a lead, its offer, its history and the outbox rows
that announce it are committed together or not at all; the others run on their own.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.content import ContentError
from ..core.leads import Candidate, LeadRow, ReferralFunnel, Startup
from ..core.session import ModuleProgress
from .db import Database
from .outbox import ERASED_PAYLOAD

WEEK = 7 * 24 * 3600


def read_startup_rows(path: Path) -> list[Any]:
    """The rows of a registry file: YAML (a list, or ``startups:`` holding one) or CSV with a header."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ContentError(name, "file", f"cannot be read: {exc.strerror}") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            raise ContentError(name, "file", "has no startups (expected a header row, then one startup a line)")
        return rows
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ContentError(name, where, f"is not valid YAML: {exc.problem}") from None
    if isinstance(data, dict) and set(data) == {"startups"}:
        data = data["startups"]
    if not isinstance(data, list) or not data:
        raise ContentError(name, "file", "expected a list of startups (or 'startups:' holding one)")
    return data


@dataclass(frozen=True)
class Staff:
    """A chat linked to a startup."""

    channel: str
    chat_ref: str
    startup_id: str
    startup_name: str
    lang: str
    blocked: bool = False
    linked_at: int = 0


@dataclass(frozen=True)
class LeadRecord:
    """A row of ``leads``."""

    id: int
    user_id: int | None
    score: int
    reasons: list
    state: str | None
    sector: str | None
    lang: str
    referral_startup_id: str | None
    startup_id: str | None
    status: str
    offered_at: int | None
    created_at: int


@dataclass(frozen=True)
class Owner:
    """What the lead feature needs to know about an owner."""

    user_id: int
    channel: str
    user_ref: str
    lang: str
    profile: dict
    consent: str
    onboarded: bool
    referral_code: str | None
    progress: dict[str, ModuleProgress]

    @property
    def passed_modules(self) -> tuple[str, ...]:
        """Ids of the modules the owner has passed."""
        return tuple(m for m, p in self.progress.items() if p.passed)


def _startup(row) -> Startup:
    states, sectors = json.loads(row["states"]), json.loads(row["sectors"])
    return Startup(
        id=row["id"],
        name=row["name"],
        states=None if states == "*" else frozenset(states),
        sectors=None if sectors == "*" else frozenset(sectors),
        languages=tuple(json.loads(row["languages"])),
        weekly_capacity=row["weekly_capacity"],
        active=bool(row["active"]),
        referral_code=row["referral_code"],
    )


def _lead(row) -> LeadRecord:
    return LeadRecord(
        row["id"], row["user_id"], row["score"], json.loads(row["reasons"]), row["state"], row["sector"], row["lang"] or "hi",
        row["referral_startup_id"], row["startup_id"], row["status"], row["offered_at"], row["created_at"],
    )


_LEAD_COLUMNS = "id, user_id, score, reasons, state, sector, lang, referral_startup_id, startup_id, status, offered_at, created_at"


def passed_all(required: Sequence[str]) -> tuple[str, tuple]:
    """``(condition, parameters)``: the owner ``u`` has passed every module in ``required``."""
    marks = ", ".join("?" * len(required)) or "NULL"
    return (f"(SELECT COUNT(*) FROM progress p WHERE p.user_id = u.id AND p.passed = 1 AND p.module_id IN ({marks})) = ?",
            (*required, len(required)))


class SqliteLeads:
    """The lead feature's tables."""

    def __init__(self, db: Database):
        self.db = db

    # ------------------------------------------------------------- startups
    async def count_startups(self) -> int:
        """How many startups the registry holds."""
        row = await self.db.fetchone("SELECT COUNT(*) FROM startups")
        return int(row[0])

    async def upsert_startups(self, startups: Sequence[Startup], now: int, new_code: Any) -> tuple[int, int]:
        """Insert or update ``startups`` by id; returns (added, updated).

        A startup keeps its referral code unless the file names another (codes are printed on
        posters); one without a code gets ``new_code()``.
        """
        added = updated = 0
        async with self.db.transaction() as conn:
            for s in startups:
                cur = await conn.execute("SELECT referral_code FROM startups WHERE id = ?", (s.id,))
                existing = await cur.fetchone()
                code = s.referral_code or (existing["referral_code"] if existing else None) or new_code()
                values = (
                    s.name, json.dumps("*" if s.states is None else sorted(s.states)),
                    json.dumps("*" if s.sectors is None else sorted(s.sectors)), json.dumps(list(s.languages)),
                    s.weekly_capacity, int(s.active), code,
                )
                if existing is None:
                    await conn.execute(
                        "INSERT INTO startups (id, name, states, sectors, languages, weekly_capacity, active, referral_code, "
                        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (s.id, *values, now, now),
                    )
                    added += 1
                else:
                    await conn.execute(
                        "UPDATE startups SET name = ?, states = ?, sectors = ?, languages = ?, weekly_capacity = ?, active = ?, "
                        "referral_code = ?, updated_at = ? WHERE id = ?",
                        (*values, now, s.id),
                    )
                    updated += 1
        return added, updated

    async def startup(self, startup_id: str) -> Startup | None:
        """The startup with this id."""
        row = await self.db.fetchone("SELECT * FROM startups WHERE id = ?", (startup_id,))
        return _startup(row) if row else None

    async def startups(self) -> list[Startup]:
        """Every startup, by id."""
        return [_startup(r) for r in await self.db.fetchall("SELECT * FROM startups ORDER BY id")]

    @staticmethod
    async def candidates(conn, now: int) -> list[Candidate]:
        """Every startup with its offers of the last 7 days and its latest offer time."""
        cur = await conn.execute(
            "SELECT s.*, "
            " (SELECT COUNT(*) FROM lead_offers o WHERE o.startup_id = s.id AND o.offered_at > ?) AS week, "
            " (SELECT MAX(o.offered_at) FROM lead_offers o WHERE o.startup_id = s.id) AS last "
            "FROM startups s ORDER BY s.id",
            (now - WEEK,),
        )
        return [Candidate(_startup(r), r["week"], r["last"]) for r in await cur.fetchall()]

    @staticmethod
    async def startup_by_referral(conn, code: str | None) -> Startup | None:
        """The startup whose referral code is ``code`` (any case), if there is one."""
        if not code:
            return None
        cur = await conn.execute("SELECT * FROM startups WHERE lower(referral_code) = lower(?)", (code,))
        row = await cur.fetchone()
        return _startup(row) if row else None

    @staticmethod
    async def startup_names(conn, ids: Iterable[str]) -> dict[str, str]:
        """Names of the given startups."""
        ids = list(ids)
        if not ids:
            return {}
        cur = await conn.execute(f"SELECT id, name FROM startups WHERE id IN ({', '.join('?' * len(ids))})", ids)
        return {r["id"]: r["name"] for r in await cur.fetchall()}

    async def set_referral_code(self, startup_id: str, code: str, now: int) -> None:
        """Give a startup a referral code."""
        await self.db.execute("UPDATE startups SET referral_code = ?, updated_at = ? WHERE id = ?", (code, now, startup_id))

    # ------------------------------------------------------------- staff and invites
    async def staff(self, channel: str, chat_ref: str) -> Staff | None:
        """The startup staff member chatting in this chat, if it is linked."""
        row = await self.db.fetchone(
            "SELECT st.channel, st.chat_ref, st.startup_id, st.lang, st.blocked_at, st.linked_at, s.name FROM startup_staff st "
            "JOIN startups s ON s.id = st.startup_id WHERE st.channel = ? AND st.chat_ref = ?",
            (channel, chat_ref),
        )
        if row is None:
            return None
        return Staff(row["channel"], row["chat_ref"], row["startup_id"], row["name"], row["lang"], row["blocked_at"] is not None,
                     row["linked_at"])

    async def unlink_staff(self, channel: str, chat_ref: str, linked_at: int) -> bool:
        """The chat asked to be unlinked (``/delete_my_data`` in a staff chat): its link goes, the
        invite it used no longer names it, and lead messages still waiting for it are not sent.
        ``False`` if it was not linked since ``linked_at`` (the button is from an earlier link)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute("DELETE FROM startup_staff WHERE channel = ? AND chat_ref = ? AND linked_at = ?",
                                     (channel, chat_ref, linked_at))
            if cur.rowcount == 0:
                return False
            await conn.execute("UPDATE invites SET used_by = NULL WHERE used_by = ?", (f"{channel}:{chat_ref}",))
            await conn.execute(
                "UPDATE outbox SET status = 'cancelled', error = 'staff chat unlinked' WHERE channel = ? AND chat_ref = ? "
                "AND status IN ('pending', 'claimed') AND kind IN ('lead_card', 'lead_notice')",
                (channel, chat_ref),
            )
            return True

    async def unblock_staff(self, channel: str, chat_ref: str) -> None:
        """The chat wrote to the bot again, so it has not blocked it (any more)."""
        await self.db.execute("UPDATE startup_staff SET blocked_at = NULL WHERE channel = ? AND chat_ref = ?", (channel, chat_ref))

    @staticmethod
    async def staff_chats(conn, startup_id: str) -> list[Staff]:
        """The startup's linked chats that have not blocked the bot."""
        cur = await conn.execute(
            "SELECT st.channel, st.chat_ref, st.startup_id, st.lang, s.name FROM startup_staff st JOIN startups s ON s.id = st.startup_id "
            "WHERE st.startup_id = ? AND st.blocked_at IS NULL ORDER BY st.linked_at, st.chat_ref",
            (startup_id,),
        )
        return [Staff(r["channel"], r["chat_ref"], r["startup_id"], r["name"], r["lang"]) for r in await cur.fetchall()]

    async def staff_count(self, startup_id: str) -> int:
        """How many chats are linked to the startup."""
        row = await self.db.fetchone("SELECT COUNT(*) FROM startup_staff WHERE startup_id = ?", (startup_id,))
        return int(row[0])

    async def create_invite(self, code: str, startup_id: str, now: int, expires_at: int) -> None:
        """Store a single-use invite."""
        await self.db.execute(
            "INSERT INTO invites (code, startup_id, created_at, expires_at) VALUES (?, ?, ?, ?)", (code, startup_id, now, expires_at)
        )

    async def redeem_invite(self, code: str, channel: str, chat_ref: str, name: str | None, lang: str, now: int) -> tuple[str, str | None]:
        """Use ``code`` to link the chat: ("linked"|"again"|"used"|"expired"|"unknown", startup id).

        "again" is the same chat using its own code once more (a repeated update): still linked.
        """
        used_by = f"{channel}:{chat_ref}"
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT startup_id, expires_at, used_at, used_by FROM invites WHERE code = ?", (code,))
            invite = await cur.fetchone()
            if invite is None:
                return "unknown", None
            if invite["used_at"] is not None:
                return ("again" if invite["used_by"] == used_by else "used"), invite["startup_id"]
            if invite["expires_at"] <= now:
                return "expired", invite["startup_id"]
            await conn.execute("UPDATE invites SET used_at = ?, used_by = ? WHERE code = ?", (now, used_by, code))
            await conn.execute(
                "INSERT INTO startup_staff (channel, chat_ref, startup_id, name, lang, linked_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel, chat_ref) DO UPDATE SET startup_id = excluded.startup_id, name = excluded.name, "
                "lang = excluded.lang, linked_at = excluded.linked_at, blocked_at = NULL",
                (channel, chat_ref, invite["startup_id"], name, lang, now),
            )
            return "linked", invite["startup_id"]

    async def set_staff_lang(self, channel: str, chat_ref: str, lang: str) -> None:
        """The language a staff chat reads its cards and lists in."""
        await self.db.execute("UPDATE startup_staff SET lang = ? WHERE channel = ? AND chat_ref = ?", (lang, channel, chat_ref))

    async def link_staff(self, channel: str, chat_ref: str, startup_id: str, lang: str, now: int) -> None:
        """Link a chat directly (the terminal demo's staff chats)."""
        await self.db.execute(
            "INSERT INTO startup_staff (channel, chat_ref, startup_id, lang, linked_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (channel, chat_ref, startup_id, lang, now),
        )

    @staticmethod
    async def newly_blocked_staff(conn) -> list[dict]:
        """Staff chats with lead messages refused as blocked (403) that were not reported yet."""
        cur = await conn.execute(
            "SELECT st.channel, st.chat_ref, st.startup_id, s.name, MAX(o.id) AS last_row FROM startup_staff st "
            "JOIN startups s ON s.id = st.startup_id "
            "JOIN outbox o ON o.channel = st.channel AND o.chat_ref = st.chat_ref AND o.status = 'blocked' AND o.id > st.blocked_row "
            "AND o.kind IN ('lead_card', 'lead_notice') "
            "GROUP BY st.channel, st.chat_ref, st.startup_id, s.name"
        )
        return [dict(r) for r in await cur.fetchall()]

    @staticmethod
    async def mark_staff_blocked(conn, channel: str, chat_ref: str, last_row: int, now: int) -> None:
        """Remember the chat blocked the bot, and which refusals were reported."""
        await conn.execute(
            "UPDATE startup_staff SET blocked_at = COALESCE(blocked_at, ?), blocked_row = ? WHERE channel = ? AND chat_ref = ?",
            (now, last_row, channel, chat_ref),
        )

    # ------------------------------------------------------------- owners
    @staticmethod
    async def owner(conn, user_id: int) -> Owner | None:
        """An owner's profile, consent, referral and module progress."""
        cur = await conn.execute(
            "SELECT id, channel, user_ref, lang, profile, consent, onboarded_at, referral_code FROM users WHERE id = ?", (user_id,)
        )
        row = await cur.fetchone()
        if row is None:
            return None
        cur = await conn.execute("SELECT module_id, best, passed FROM progress WHERE user_id = ?", (user_id,))
        progress = {p["module_id"]: ModuleProgress(best=p["best"], passed=bool(p["passed"])) for p in await cur.fetchall()}
        return Owner(
            row["id"], row["channel"], row["user_ref"], row["lang"], json.loads(row["profile"]), row["consent"],
            row["onboarded_at"] is not None, row["referral_code"], progress,
        )

    async def owners_to_check(self, required: Sequence[str], since: int) -> list[int]:
        """Owners seen since ``since`` who have consented, onboarded and passed ``required``, without a lead."""
        passed, params = passed_all(required)
        rows = await self.db.fetchall(
            "SELECT u.id FROM users u WHERE u.consent = 'given' AND u.onboarded_at IS NOT NULL AND u.last_seen_at >= ? "
            f"AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.user_id = u.id) AND {passed} ORDER BY u.id",
            (since, *params),
        )
        return [r[0] for r in rows]

    @staticmethod
    async def admin_langs(conn, channel: str, refs: Iterable[str]) -> dict[str, str]:
        """The language of each admin who has talked to the bot as an owner."""
        refs = list(refs)
        if not refs:
            return {}
        cur = await conn.execute(
            f"SELECT user_ref, lang FROM users WHERE channel = ? AND user_ref IN ({', '.join('?' * len(refs))})", (channel, *refs)
        )
        return {r["user_ref"]: r["lang"] for r in await cur.fetchall()}

    # ------------------------------------------------------------- leads
    @staticmethod
    async def lead_of_user(conn, user_id: int) -> LeadRecord | None:
        """The owner's lead, if one was created."""
        cur = await conn.execute(f"SELECT {_LEAD_COLUMNS} FROM leads WHERE user_id = ?", (user_id,))
        row = await cur.fetchone()
        return _lead(row) if row else None

    @staticmethod
    async def lead(conn, lead_id: int) -> LeadRecord | None:
        """The lead with this id."""
        cur = await conn.execute(f"SELECT {_LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,))
        row = await cur.fetchone()
        return _lead(row) if row else None

    async def get_lead(self, lead_id: int) -> LeadRecord | None:
        """The lead with this id (outside a transaction)."""
        row = await self.db.fetchone(f"SELECT {_LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,))
        return _lead(row) if row else None

    @staticmethod
    async def insert_lead(
        conn, user_id: int, score: int, reasons: list, state: str | None, sector: str | None, lang: str,
        referral_startup_id: str | None, now: int,
    ) -> int | None:
        """Create the owner's lead (status 'unassigned'); ``None`` if the owner already has one."""
        cur = await conn.execute(
            "INSERT INTO leads (user_id, score, reasons, state, sector, lang, referral_startup_id, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'unassigned', ?, ?) ON CONFLICT (user_id) DO NOTHING RETURNING id",
            (user_id, score, json.dumps(reasons, ensure_ascii=False), state, sector, lang, referral_startup_id, now, now),
        )
        row = await cur.fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    async def set_status(conn, lead_id: int, status: str, now: int, *, startup_id: Any = ..., offered_at: Any = ...) -> None:
        """Move a lead to ``status`` (and to another assignee / offer time when given)."""
        sets, params = ["status = ?", "updated_at = ?"], [status, now]
        if startup_id is not ...:
            sets.append("startup_id = ?")
            params.append(startup_id)
        if offered_at is not ...:
            sets.append("offered_at = ?")
            params.append(offered_at)
        await conn.execute(f"UPDATE leads SET {', '.join(sets)} WHERE id = ?", (*params, lead_id))

    @staticmethod
    async def owed_notices(conn) -> list[LeadRecord]:
        """Withdrawn leads whose startup has not been told yet."""
        cur = await conn.execute(f"SELECT {_LEAD_COLUMNS} FROM leads WHERE notice_owed = 1 ORDER BY id")
        return [_lead(r) for r in await cur.fetchall()]

    @staticmethod
    async def notice_sent(conn, lead_id: int) -> None:
        await conn.execute("UPDATE leads SET notice_owed = 0 WHERE id = ?", (lead_id,))

    @staticmethod
    async def add_history(conn, lead_id: int, status: str, startup_id: str | None, actor: str, note: str | None, now: int) -> int:
        """Record one timestamped change (commissions are computed from these); its id."""
        cur = await conn.execute(
            "INSERT INTO lead_history (lead_id, status, startup_id, actor, note, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (lead_id, status, startup_id, actor, note, now),
        )
        return (await cur.fetchone())[0]

    @staticmethod
    async def moves(conn, lead_id: int, startup_id: str) -> list[tuple[int, str, int]]:
        """The lead's changes while with ``startup_id``, oldest first: (history id, status, when)."""
        cur = await conn.execute(
            "SELECT id, status, at FROM lead_history WHERE lead_id = ? AND startup_id = ? ORDER BY id", (lead_id, startup_id)
        )
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]

    @staticmethod
    async def undo_move(conn, history_id: int, lead_id: int, back_to: str, actor: str, now: int) -> None:
        """Take back the change ``history_id``: the lead returns to ``back_to``, the change leaves the history
        (commissions and the funnel never count it) and the undoing is recorded in its place."""
        cur = await conn.execute("DELETE FROM lead_history WHERE id = ? AND lead_id = ? RETURNING status, startup_id", (history_id, lead_id))
        row = await cur.fetchone()
        await conn.execute("UPDATE leads SET status = ?, updated_at = ? WHERE id = ?", (back_to, now, lead_id))
        await conn.execute(
            "INSERT INTO lead_history (lead_id, status, startup_id, actor, note, at) VALUES (?, 'undone', ?, ?, ?, ?)",
            (lead_id, row[1], actor, row[0], now),
        )

    @staticmethod
    async def drop_unsent(conn, dedup_key: str) -> int:
        """Delete the outbox row ``dedup_key`` if it has not gone out yet (so the same notice can be queued again)."""
        cur = await conn.execute("DELETE FROM outbox WHERE dedup_key = ? AND status IN ('pending', 'claimed')", (dedup_key,))
        return cur.rowcount

    @staticmethod
    async def offered_to(conn, lead_id: int) -> set[str]:
        """Every startup the lead was ever offered to."""
        cur = await conn.execute("SELECT startup_id FROM lead_offers WHERE lead_id = ?", (lead_id,))
        return {r[0] for r in await cur.fetchall()}

    @staticmethod
    async def add_offer(conn, lead_id: int, startup_id: str, now: int) -> None:
        """Offer the lead to a startup (the primary key makes a second offer to it fail loudly)."""
        await conn.execute("INSERT INTO lead_offers (lead_id, startup_id, offered_at) VALUES (?, ?, ?)", (lead_id, startup_id, now))

    @staticmethod
    async def close_offer(conn, lead_id: int, startup_id: str, outcome: str, reason: str | None, now: int) -> None:
        """The startup answered (or the SLA ran out): accepted, declined, expired or withdrawn."""
        await conn.execute(
            "UPDATE lead_offers SET outcome = ?, reason = ?, answered_at = ? WHERE lead_id = ? AND startup_id = ? AND outcome IS NULL",
            (outcome, reason, now, lead_id, startup_id),
        )

    async def overdue(self, cutoff: int) -> list[int]:
        """Leads offered at or before ``cutoff`` and still unanswered."""
        rows = await self.db.fetchall(
            "SELECT id FROM leads WHERE status = 'offered' AND offered_at <= ? ORDER BY offered_at, id", (cutoff,)
        )
        return [r[0] for r in rows]

    async def unassigned(self) -> list[int]:
        """Leads waiting in the unassigned queue, oldest first."""
        rows = await self.db.fetchall("SELECT id FROM leads WHERE status = 'unassigned' ORDER BY created_at, id")
        return [r[0] for r in rows]

    async def page(self, startup_id: str, status: str | None, limit: int, offset: int) -> tuple[list[LeadRow], int]:
        """One page of the startup's current leads (newest offer first) and how many there are."""
        where, params = "l.startup_id = ?", [startup_id]
        if status is not None:
            where += " AND l.status = ?"
            params.append(status)
        total = await self.db.fetchone(f"SELECT COUNT(*) FROM leads l WHERE {where}", params)
        rows = await self.db.fetchall(
            f"SELECT l.id, l.status, l.score, u.profile FROM leads l LEFT JOIN users u ON u.id = l.user_id WHERE {where} "
            "ORDER BY COALESCE(l.offered_at, l.created_at) DESC, l.id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [LeadRow(r["id"], r["status"], r["score"], json.loads(r["profile"] or "{}")) for r in rows], int(total[0])

    async def funnel(self, startup: Startup, required: Sequence[str]) -> ReferralFunnel:
        """How far the owners the startup's referral link brought have got."""
        if not startup.referral_code:
            return ReferralFunnel()
        marks = ", ".join("?" * len(required)) or "NULL"
        row = await self.db.fetchone(
            "SELECT COUNT(*) AS brought, "
            " COUNT(*) FILTER (WHERE u.onboarded_at IS NOT NULL AND u.consent = 'given') AS onboarded, "
            f" COUNT(*) FILTER (WHERE (SELECT COUNT(*) FROM progress p WHERE p.user_id = u.id AND p.passed = 1 "
            f"AND p.module_id IN ({marks})) = ?) AS ready "
            "FROM users u WHERE lower(u.referral_code) = lower(?) AND u.referral_code IS NOT NULL",
            (*required, len(required), startup.referral_code),
        )
        leads = await self.db.fetchone("SELECT COUNT(*) FROM leads WHERE referral_startup_id = ?", (startup.id,))
        return ReferralFunnel(int(row["brought"] or 0), int(row["onboarded"] or 0), int(row["ready"] or 0), int(leads[0]))

    # ------------------------------------------------------------- reports
    async def offer_rows(self) -> list[dict]:
        """Every offer: startup, outcome, offered and answered times."""
        return [dict(r) for r in await self.db.fetchall("SELECT lead_id, startup_id, offered_at, answered_at, outcome, reason FROM lead_offers")]

    async def reached(self) -> list[dict]:
        """(startup, lead, status) for every stage a startup's lead reached, from the history."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT startup_id, lead_id, status FROM lead_history WHERE startup_id IS NOT NULL "
            "AND status IN ('accepted', 'contacted', 'listed', 'first_order', 'lost')"
        )
        return [dict(r) for r in rows]

    async def export_rows(self) -> list[dict]:
        """Each lead with its owner's details and the first time it reached each status."""
        rows = await self.db.fetchall(
            "SELECT l.id, l.created_at, l.status, l.score, l.state, l.sector, l.lang, l.startup_id, s.name AS startup_name, "
            " l.referral_startup_id, u.profile, "
            " (SELECT MIN(at) FROM lead_history h WHERE h.lead_id = l.id AND h.status = 'offered') AS offered_at, "
            " (SELECT MIN(at) FROM lead_history h WHERE h.lead_id = l.id AND h.status = 'accepted') AS accepted_at, "
            " (SELECT MIN(at) FROM lead_history h WHERE h.lead_id = l.id AND h.status = 'contacted') AS contacted_at, "
            " (SELECT MIN(at) FROM lead_history h WHERE h.lead_id = l.id AND h.status = 'listed') AS listed_at, "
            " (SELECT MIN(at) FROM lead_history h WHERE h.lead_id = l.id AND h.status = 'first_order') AS first_order_at, "
            " (SELECT MIN(at) FROM lead_history h WHERE h.lead_id = l.id AND h.status = 'lost') AS lost_at, "
            " (SELECT note FROM lead_history h WHERE h.lead_id = l.id AND h.status = 'lost' ORDER BY at LIMIT 1) AS lost_reason, "
            " (SELECT string_agg(o.startup_id || ':' || o.outcome || COALESCE(':' || o.reason, ''), ' ') FROM lead_offers o "
            "   WHERE o.lead_id = l.id AND o.outcome IN ('declined', 'expired')) AS passed_on "
            "FROM leads l LEFT JOIN startups s ON s.id = l.startup_id LEFT JOIN users u ON u.id = l.user_id ORDER BY l.id"
        )
        out = []
        for r in rows:
            row = dict(r)
            row["profile"] = json.loads(row["profile"] or "{}")
            out.append(row)
        return out

    async def referral_funnels(self, required: Sequence[str]) -> dict[str, ReferralFunnel]:
        """Each startup's referral funnel."""
        return {s.id: await self.funnel(s, required) for s in await self.startups()}

    async def history(self, lead_id: int) -> list[dict]:
        """The lead's timestamped changes, oldest first."""
        rows = await self.db.fetchall(
            "SELECT status, startup_id, actor, note, at FROM lead_history WHERE lead_id = ? ORDER BY at, id", (lead_id,)
        )
        return [dict(r) for r in rows]


_LIVE = ("offered", "accepted", "contacted", "listed")  # a startup is working on the lead: its staff must be told


def withdraw_lead_of(conn: sqlite3.Connection, user_id: int, now: int) -> int | None:
    """Inside the erasing turn's transaction: the owner's lead is withdrawn at once.

    Undelivered messages about it are dropped, delivered ones lose their text, an open offer is
    closed, and the lead stops pointing at the owner, so it can neither be reassigned nor bring
    the erased owner "good news". The staff notice is owed (``notice_owed``) and sent after.
    Returns the lead's id, if the owner had one.
    """
    row = conn.execute("SELECT id, status, startup_id FROM leads WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        return None
    lead_id, status, startup_id = row[0], row[1], row[2]
    pattern = f"lead:{lead_id}:%"
    conn.execute("UPDATE outbox SET status = 'cancelled', error = 'owner erased their data' "
                 "WHERE status IN ('pending', 'claimed') AND dedup_key LIKE ?", (pattern,))
    conn.execute("UPDATE outbox SET payload = ? WHERE dedup_key LIKE ?", (ERASED_PAYLOAD, pattern))
    conn.execute("DELETE FROM lead_notes WHERE lead_id = ?", (lead_id,))  # staff notes about the owner go with them
    if status == "offered" and startup_id:
        conn.execute("UPDATE lead_offers SET outcome = 'withdrawn', answered_at = ? WHERE lead_id = ? AND startup_id = ? "
                     "AND outcome IS NULL", (now, lead_id, startup_id))
    owed = int(bool(startup_id) and status in _LIVE)
    conn.execute("UPDATE leads SET user_id = NULL, status = 'withdrawn', notice_owed = ?, updated_at = ? WHERE id = ?",
                 (owed, now, lead_id))
    conn.execute("INSERT INTO lead_history (lead_id, status, startup_id, actor, note, at) VALUES (?, 'withdrawn', ?, 'owner', "
                 "'data erased', ?)", (lead_id, startup_id, now))
    return lead_id
