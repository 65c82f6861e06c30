"""Users' conversation state and what their turns produced, in SQLite.

``load`` gives the engine a ``Session``; ``save_turn`` writes the session the engine returned,
together with everything the turn's events imply (consent time, quiz answers, progress, the
event log, the handled update id), in one transaction, before the bot replies.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass

from collections.abc import Sequence

from ..core.errors import StorageError, TurnConflict
from ..core.messages import Event, Outbound, Tapped, UserKey
from ..core.session import ModuleProgress, Session
from .db import Database
from .certificates import revoke_of
from .inbox import already_seen, mark_seen
from .leads import withdraw_lead_of
from .outbox import ERASED_PAYLOAD, OutboxRow, add_replies

log = logging.getLogger(__name__)
_PROGRESS_FIELDS = ("lesson", "attempt", "question", "score", "best", "passed", "in_quiz")
# Events that only matter inside the turn and are not kept in the event log.
_UNLOGGED = {"answer", "lesson_read", "quiz_answer"}


@dataclass
class Loaded:
    """A user's row id and session; ``new`` when the user was created by this load."""

    user_id: int
    session: Session
    new: bool
    turns: int = 0  # turns saved so far: the next save must find this number (``save_turn``)


def _dump_state(s: Session) -> str:
    return json.dumps({"flow": s.flow, "step": s.step, "seq": s.seq, "draft": s.draft, "seed": s.seed}, ensure_ascii=False)


_SELECT_USER = (
    "SELECT id, lang, state, profile, consent, onboarded_at, reminders_off, broadcasts_off, turns "
    "FROM users WHERE channel = ? AND user_ref = ?"
)
_SELECT_PROGRESS = f"SELECT module_id, {', '.join(_PROGRESS_FIELDS)} FROM progress WHERE user_id = ?"
_INSERT_USER = (
    "INSERT INTO users (channel, user_ref, lang, state, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (channel, user_ref) DO UPDATE SET last_seen_at = excluded.last_seen_at RETURNING id"
)
_UPDATE_USER = (
    "UPDATE users SET lang = ?, state = ?, profile = ?, consent = ?, reminders_off = ?, broadcasts_off = ?, "
    "last_seen_at = ?, blocked_at = NULL, onboarded_at = CASE WHEN ? = 1 THEN COALESCE(onboarded_at, ?) END, "
    "turns = turns + 1 WHERE id = ? AND turns = ?"
)
_UPSERT_PROGRESS = (
    f"INSERT INTO progress (user_id, module_id, {', '.join(_PROGRESS_FIELDS)}, started_at, passed_at, updated_at) "
    f"VALUES (?, ?, {', '.join('?' * len(_PROGRESS_FIELDS))}, ?, ?, ?) "
    "ON CONFLICT (user_id, module_id) DO UPDATE SET "
    + ", ".join(f"{f} = excluded.{f}" for f in _PROGRESS_FIELDS)
    + ", passed_at = COALESCE(progress.passed_at, excluded.passed_at), updated_at = excluded.updated_at"
)
_INSERT_EVENT = "INSERT INTO events (user_id, kind, data, at) VALUES (?, ?, ?, ?)"
_SEEN = object()  # what a turn's read returns for an update already handled
_KNOWN_REFERRAL = "SELECT 1 FROM startups WHERE lower(referral_code) = lower(?)"


def _session(row: sqlite3.Row, progress: list[sqlite3.Row]) -> Session:
    state = json.loads(row["state"])
    session = Session(
        lang=row["lang"],
        flow=state.get("flow", "new"),
        step=state.get("step", ""),
        seq=state.get("seq", 0),
        draft=state.get("draft", {}),
        seed=state.get("seed", 0),
        profile=json.loads(row["profile"]),
        consent=row["consent"],
        onboarded=row["onboarded_at"] is not None,
        reminders_off=bool(row["reminders_off"]),
        broadcasts_off=bool(row["broadcasts_off"]),
    )
    for p in progress:
        session.progress[p["module_id"]] = ModuleProgress(
            lesson=p["lesson"], attempt=p["attempt"], question=p["question"], score=p["score"],
            best=p["best"], passed=bool(p["passed"]), in_quiz=bool(p["in_quiz"]),
        )
    return session


class SqliteSessionStore:
    """Sessions keyed by (channel, user_ref), stored in ``users`` and ``progress``.

    A turn costs two trips to the database thread: one for its reads (``open_turn``), one for
    its transaction (``save_turn``); a new user adds one for the insert.
    """

    def __init__(self, db: Database):
        self.db = db

    async def load(self, key: UserKey, *, new_session: Session, now: int) -> Loaded:
        """The user's session; a new row from ``new_session`` if the user is unknown."""
        loaded = await self.open_turn(key, update_id=None, new_session=new_session, now=now)
        assert loaded is not None  # only a seen update id gives None
        return loaded

    async def open_turn(self, key: UserKey, *, update_id: str | None, new_session: Session, now: int) -> Loaded | None:
        """Like ``load``, but ``None`` if ``update_id`` was already handled; one trip for all the reads."""

        def read(conn: sqlite3.Connection):
            if update_id is not None and already_seen(conn, key.channel, update_id, now):
                return _SEEN
            row = conn.execute(_SELECT_USER, (key.channel, key.user_ref)).fetchone()
            return None if row is None else (row, conn.execute(_SELECT_PROGRESS, (row["id"],)).fetchall())

        found = await self.db.run(read)
        if found is _SEEN:
            return None
        if found is not None:
            row, progress = found
            return Loaded(row["id"], _session(row, progress), False, row["turns"])

        def create(conn: sqlite3.Connection) -> int:
            user_id = conn.execute(
                _INSERT_USER, (key.channel, key.user_ref, new_session.lang, _dump_state(new_session), now, now)
            ).fetchone()[0]
            conn.execute("INSERT INTO events (user_id, kind, at) VALUES (?, 'first_message', ?)", (user_id, now))
            return user_id

        return Loaded(await self.db.run_transaction(create), new_session, True)

    async def has_users_on(self, channel: str) -> bool:
        """Whether anyone has ever written from ``channel`` (a database a live bot has used)."""
        return await self.db.fetchone("SELECT 1 FROM users WHERE channel = ? LIMIT 1", (channel,)) is not None

    async def seen(self, channel: str, update_id: str, now: int | None = None) -> bool:
        """Whether this platform update was already handled (within its channel's window before ``now``)."""
        at = int(time.time()) if now is None else now
        return await self.db.run(lambda conn: already_seen(conn, channel, update_id, at))

    async def save_turn(
        self,
        user_id: int,
        before: Session,
        after: Session,
        events: list[Event],
        *,
        now: int,
        channel: str,
        update_id: str | None = None,
        chat_ref: str | None = None,
        replies: Sequence[Outbound] = (),
        reply_to: Tapped | None = None,
        close_contact: bool = False,
        turns: int | None = None,
    ) -> list[OutboxRow]:
        """Persist a turn atomically: the new session, progress, answers, events, the update id,
        and its ``replies`` as outbox rows to ``chat_ref`` (returned, 'sending', for the caller to send).

        ``turns``: how many turns the user had when this one read the session (``Loaded.turns``). If
        another process saved one since, nothing is written and ``TurnConflict`` is raised: the caller
        reads again and redoes the turn (the repeated update, if it was the same one, is then seen).
        """
        kinds = {e.kind for e in events}
        user = (
            after.lang, _dump_state(after), json.dumps(after.profile, ensure_ascii=False), after.consent,
            int(after.reminders_off), int(after.broadcasts_off), now, int(after.onboarded), now, user_id,
        )
        progress = [
            (user_id, module_id, *[int(v) if isinstance(v, bool) else v for v in (getattr(p, f) for f in _PROGRESS_FIELDS)],
             now, now if p.passed else None, now)
            for module_id, p in after.progress.items()
            if before.progress.get(module_id) != p or "restarted" in kinds
        ]

        def write(conn: sqlite3.Connection) -> list[OutboxRow]:
            if update_id is not None:
                mark_seen(conn, channel, update_id, now)
            if "delete_my_data" in kinds:
                self._erase(conn, user_id, now)
                # what the user sent, as stored on arrival, goes too
                conn.execute("DELETE FROM inbox WHERE channel = ? AND chat_ref = ?", (channel, chat_ref))
            elif "restarted" in kinds:  # starting again clears progress and the attempts behind it
                conn.execute("DELETE FROM progress WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM quiz_answers WHERE user_id = ?", (user_id,))
                revoke_of(conn, user_id, now)  # and what they earned with it: the certificate's code says "withdrawn"
            if turns is None:  # a caller that read no turn number (tools, tests): whatever the row has now
                turns_now = conn.execute("SELECT turns FROM users WHERE id = ?", (user_id,)).fetchone()
                expected = turns_now[0] if turns_now else 0
            else:
                expected = turns
            if conn.execute(_UPDATE_USER, (*user, expected)).rowcount != 1:
                raise TurnConflict(f"user {user_id} saved another turn meanwhile")
            for event in events:
                self._apply(conn, user_id, event, now)
            if progress:
                conn.executemany(_UPSERT_PROGRESS, progress)
            if not replies or chat_ref is None:
                return []
            return add_replies(conn, user_id=user_id, channel=channel, chat_ref=chat_ref, outputs=replies,
                               reply_to=reply_to, close_contact=close_contact, now=now, lang=after.lang)

        rows = await self.db.run_transaction(write)
        if "delete_my_data" in kinds:
            await self._wipe_old_pages()
        return rows

    async def _wipe_old_pages(self) -> None:
        """After an erasure: the WAL still holds the pages as they were before it; fold it into the
        database (whose freed space ``secure_delete`` zeroed) and truncate it, so the erased name and
        number are gone from the disk, not only from the tables."""
        try:
            busy, _, _ = await self.db.checkpoint()
        except StorageError as exc:  # the erasure is committed; the daily maintenance checkpoints again
            log.warning("checkpoint after an erasure failed (%s); maintenance will truncate the WAL", exc)
            return
        if busy:
            log.warning("checkpoint after an erasure was kept from finishing by another reader; maintenance retries it")

    @staticmethod
    def _apply(conn: sqlite3.Connection, user_id: int, event: Event, now: int) -> None:
        kind, data = event.kind, event.data
        if kind == "consent_given":
            conn.execute(
                "UPDATE users SET consent_at = ?, consent_version = ?, consent_lang = ? WHERE id = ?",
                (now, data.get("version"), data.get("lang"), user_id),
            )
        elif kind == "consent_refused":
            conn.execute(
                "UPDATE users SET consent_at = ?, consent_version = ?, consent_lang = ?, profile = '{}' WHERE id = ?",
                (now, data.get("version"), data.get("lang"), user_id),
            )
            revoke_of(conn, user_id, now)  # "I have not kept any of your details": nor a certificate naming them
        elif kind == "referral":
            # Only a code some startup really has: an invented or mistyped one is neither kept nor
            # logged, so /my_data never claims a partner brought the owner.
            if conn.execute(_KNOWN_REFERRAL, (str(data.get("code", "")),)).fetchone() is None:
                return
            conn.execute("UPDATE users SET referral_code = COALESCE(referral_code, ?) WHERE id = ?", (data["code"], user_id))
        elif kind == "quiz_answer":
            conn.execute(
                "INSERT INTO quiz_answers (user_id, module_id, attempt, question_id, option_id, correct, answered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (user_id, data["module"], data["attempt"], data["question"], data["option"], int(data["correct"]), now),
            )
        if kind not in _UNLOGGED and kind != "delete_my_data":
            conn.execute(_INSERT_EVENT, (user_id, kind, json.dumps(data, ensure_ascii=False), now))

    @staticmethod
    def _erase(conn: sqlite3.Connection, user_id: int, now: int) -> None:
        """Everything the owner told us goes; the row stays so the chat keeps working."""
        conn.execute("DELETE FROM progress WHERE user_id = ?", (user_id,))
        conn.execute("DELETE FROM quiz_answers WHERE user_id = ?", (user_id,))
        conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,))
        conn.execute(
            "UPDATE users SET profile = '{}', consent = '', consent_at = NULL, consent_version = NULL, consent_lang = NULL, "
            "onboarded_at = NULL, referral_code = NULL WHERE id = ?",
            (user_id,),
        )
        # Messages to the owner (reminders, notices, broadcasts) keep their delivery record but
        # lose their text; what was still waiting is not sent.
        conn.execute(
            "UPDATE outbox SET payload = ?, status = CASE WHEN status IN ('pending', 'claimed') THEN 'cancelled' "
            "ELSE status END WHERE user_id = ?",
            (ERASED_PAYLOAD, user_id),
        )
        conn.execute("INSERT INTO events (user_id, kind, at) VALUES (?, 'data_deleted', ?)", (user_id, now))
        withdraw_lead_of(conn, user_id, now)  # the same transaction: erased, and the lead withdrawn, or neither
        revoke_of(conn, user_id, now)  # and the certificate withdrawn: a check of its code says so, and names no one
