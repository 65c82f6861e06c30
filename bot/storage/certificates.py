"""Certificates: issued once per owner, checked by code, revoked by the owner's erasure."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.messages import Outbound, UserKey
from .db import Database
from .leads import passed_all
from .outbox import OutboxRow, add_replies


@dataclass(frozen=True)
class Certificate:
    code: str
    lang: str
    owner_name: str
    business_name: str
    modules: tuple[str, ...]
    issued_at: int
    revoked_at: int | None = None
    user_id: int | None = None


@dataclass(frozen=True)
class Holder:
    """What a certificate is made of: the owner's chat, language, names and passed modules."""

    user_id: int
    channel: str
    chat_ref: str
    lang: str
    owner_name: str
    business_name: str
    passed: tuple[str, ...]


def _certificate(row: sqlite3.Row) -> Certificate:
    return Certificate(row["code"], row["lang"], row["owner_name"], row["business_name"], tuple(json.loads(row["modules"])),
                       row["issued_at"], row["revoked_at"], row["user_id"])


def revoke_of(conn: sqlite3.Connection, user_id: int, now: int) -> None:
    """Revoke the owner's certificate on an open transaction (their erasure): only the code and dates stay."""
    conn.execute(
        "UPDATE certificates SET user_id = NULL, owner_name = '', business_name = '', modules = '[]', revoked_at = ? "
        "WHERE user_id = ?",
        (now, user_id),
    )


class SqliteCertificates:
    """The certificates table."""

    def __init__(self, db: Database):
        self.db = db

    async def find(self, code: str) -> Certificate | None:
        row = await self.db.fetchone("SELECT * FROM certificates WHERE code = ?", (code,))
        return _certificate(row) if row else None

    async def of_user(self, user_id: int) -> Certificate | None:
        row = await self.db.fetchone("SELECT * FROM certificates WHERE user_id = ?", (user_id,))
        return _certificate(row) if row else None

    async def user(self, key: UserKey) -> tuple[int, str] | None:
        """``(user id, language)`` of the chat ``key``, if it has talked to the bot."""
        row = await self.db.fetchone("SELECT id, lang FROM users WHERE channel = ? AND user_ref = ?", (key.channel, key.user_ref))
        return (row["id"], row["lang"]) if row else None

    async def holder(self, user_id: int) -> Holder | None:
        """The owner as a certificate would show them; ``None`` if they have not consented (or erased)."""
        row = await self.db.fetchone("SELECT * FROM users WHERE id = ? AND consent = 'given'", (user_id,))
        if row is None:
            return None
        profile = json.loads(row["profile"] or "{}")
        passed = await self.db.fetchall(
            "SELECT module_id FROM progress WHERE user_id = ? AND passed = 1 ORDER BY passed_at, module_id", (user_id,)
        )
        return Holder(user_id, row["channel"], row["user_ref"], row["lang"], str(profile.get("owner_name", "")),
                      str(profile.get("business_name", "")), tuple(r["module_id"] for r in passed))

    async def owners_due(self, required: Sequence[str], seen_since: int) -> list[int]:
        """Owners seen since ``seen_since`` who passed every module in ``required`` and have no
        certificate (a crash before it was issued)."""
        passed, params = passed_all(required)
        rows = await self.db.fetchall(
            "SELECT u.id FROM users u WHERE u.consent = 'given' AND u.last_seen_at >= ? "
            f"AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.user_id = u.id) AND {passed} ORDER BY u.id",
            (seen_since, *params),
        )
        return [r[0] for r in rows]

    async def issue(self, certificate: Certificate, holder: Holder, outputs: Sequence[Outbound], now: int,
                    *, replace_old: bool = False) -> tuple[Certificate | None, list[OutboxRow]]:
        """Store ``certificate`` and the message that sends it, in one transaction.

        An owner gets one certificate: if one exists already (issued by another turn or worker),
        that one is returned and nothing is sent, unless ``replace_old`` (the name on it changed):
        then the old code is revoked and this one takes its place. ``None`` if the owner is no
        longer as ``holder`` says (erased, or renamed meanwhile).
        """
        def work(conn: sqlite3.Connection) -> tuple[Certificate | None, list[OutboxRow]]:
            row = conn.execute("SELECT * FROM certificates WHERE user_id = ?", (holder.user_id,)).fetchone()
            if row is not None and not replace_old:
                return _certificate(row), []
            # The owner may have erased their data (or changed their name) while the picture was
            # drawn: issue only what is still true, in this transaction.
            now_row = conn.execute("SELECT consent, profile FROM users WHERE id = ?", (holder.user_id,)).fetchone()
            profile = json.loads(now_row["profile"] or "{}") if now_row else {}
            if now_row is None or now_row["consent"] != "given" or (
                str(profile.get("owner_name", "")), str(profile.get("business_name", ""))
            ) != (holder.owner_name, holder.business_name):
                return None, []
            c = certificate
            if row is not None:  # a reissue: the old code now says "withdrawn"
                revoke_of(conn, holder.user_id, now)
            conn.execute(
                "INSERT INTO certificates (code, user_id, lang, owner_name, business_name, modules, issued_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (c.code, holder.user_id, c.lang, c.owner_name, c.business_name, json.dumps(list(c.modules)), c.issued_at),
            )
            rows = add_replies(conn, user_id=holder.user_id, channel=holder.channel, chat_ref=holder.chat_ref, outputs=outputs,
                               reply_to=None, close_contact=False, now=now, lang=holder.lang)
            return c, rows

        return await self.db.run_transaction(work)
