"""The admins' dashboard tables: where onboarding stops, how far owners got in each module, the
hardest quiz questions, leads waiting and SLA lapses per startup, each for an optional date range.

Dates are epoch seconds, ``since`` inclusive and ``until`` exclusive (``None``: open). What the
range applies to: an owner's first message (``users.first_seen_at``) for both drop-offs, the answer
time for the quiz, the offer time for leads waiting, the lapse's time (``lead_history.at``) for
SLA lapses. The SQL is portable (SQLite and PostgreSQL): ``?`` placeholders, ``COUNT(*) FILTER``.
``users.state`` is JSON kept as TEXT on both engines, so the onboarding step is read from it here
in Python (one row per owner still onboarding: a few thousand at most).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..core.funnel import Filters
from .db import Database

# An owner who erased their data and has not given consent again (as bot/storage/stats.py).
_NOT_ERASED = "NOT (u.consent != 'given' AND EXISTS (SELECT 1 FROM events e WHERE e.user_id = u.id AND e.kind = 'data_deleted'))"
_USER_COLUMNS = {"state": "u.profile ->> 'state'", "sector": "u.profile ->> 'sector'", "lang": "u.lang"}


@dataclass(frozen=True)
class QuestionRate:
    """A quiz question's first tries: how many owners answered it on their first attempt, and how many got it right."""

    module_id: str
    question_id: str
    answered: int
    correct: int

    @property
    def rate(self) -> float:
        return self.correct / self.answered if self.answered else 0.0


@dataclass(frozen=True)
class ModulePlace:
    """How many owners who opened a module are at one place in it (``progress`` rows grouped)."""

    module_id: str
    lesson: int  # lessons read: the one on show is ``lesson + 1`` (a row exists once the module is opened)
    in_quiz: bool
    tried: bool  # a quiz attempt was started
    passed: bool
    owners: int


@dataclass(frozen=True)
class StartupLoad:
    """Per startup: leads offered and not yet answered, and offers that lapsed unanswered (SLA)."""

    startup_id: str
    name: str
    waiting: int
    lapsed: int


def _range(column: str, since: int | None, until: int | None) -> tuple[list[str], list[Any]]:
    clauses, params = [], []
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(until)
    return clauses, params


def _owners(filters: Filters) -> tuple[list[str], list[Any]]:
    clauses, params = [], []
    for name, column in _USER_COLUMNS.items():
        value = getattr(filters, name)
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    return clauses, params


class SqliteAdminStats:
    """Read-only queries behind the admin page."""

    def __init__(self, db: Database):
        self.db = db

    async def onboarding_stops(self, filters: Filters, since: int | None = None, until: int | None = None) -> dict[str, int]:
        """Owners whose onboarding is not finished, by the step they are on ('' for those who never got a question)."""
        where, params = _owners(filters)
        dates, more = _range("u.first_seen_at", since, until)
        rows = await self.db.fetchall(
            "SELECT u.state FROM users u WHERE u.onboarded_at IS NULL AND "
            + " AND ".join([*where, *dates, _NOT_ERASED]),
            (*params, *more),
        )
        stops: dict[str, int] = {}
        for r in rows:
            try:
                state = json.loads(r[0] or "{}")
            except ValueError:
                state = {}
            step = state.get("step", "") if state.get("flow") in ("onboarding", "", None) else ""
            stops[step] = stops.get(step, 0) + 1
        return stops

    async def module_places(self, filters: Filters, since: int | None = None, until: int | None = None) -> list[ModulePlace]:
        """Owners who opened a module, grouped by module and where they are in it (one query, any number of owners)."""
        where, params = _owners(filters)
        dates, more = _range("u.first_seen_at", since, until)
        tried = "CASE WHEN p.attempt > 0 THEN 1 ELSE 0 END"
        rows = await self.db.fetchall(
            f"SELECT p.module_id, p.lesson, p.in_quiz, {tried}, p.passed, COUNT(*) "
            "FROM progress p JOIN users u ON u.id = p.user_id WHERE "
            + " AND ".join([*where, *dates, _NOT_ERASED])
            + f" GROUP BY p.module_id, p.lesson, p.in_quiz, {tried}, p.passed",
            (*params, *more),
        )
        return [ModulePlace(r[0], int(r[1]), bool(r[2]), bool(r[3]), bool(r[4]), int(r[5])) for r in rows]

    async def question_rates(self, filters: Filters, since: int | None = None, until: int | None = None,
                             limit: int = 10) -> list[QuestionRate]:
        """The questions with the lowest first-try correct rate (first attempt of each owner), lowest first."""
        where, params = _owners(filters)
        dates, more = _range("a.answered_at", since, until)
        rows = await self.db.fetchall(
            "SELECT a.module_id, a.question_id, COUNT(*) AS answered, COUNT(*) FILTER (WHERE a.correct = 1) AS correct "
            "FROM quiz_answers a JOIN users u ON u.id = a.user_id WHERE "
            + " AND ".join(["a.attempt = 1", *where, *dates])
            + " GROUP BY a.module_id, a.question_id "
            "ORDER BY COUNT(*) FILTER (WHERE a.correct = 1) * 1.0 / COUNT(*), COUNT(*) DESC, a.module_id, a.question_id LIMIT ?",
            (*params, *more, limit),
        )
        return [QuestionRate(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    async def startup_load(self, since: int | None = None, until: int | None = None) -> list[StartupLoad]:
        """Every startup with its leads waiting for an answer (offered in the range) and its SLA lapses (in the range)."""
        offered, p1 = _range("o.offered_at", since, until)
        lapsed, p2 = _range("h.at", since, until)
        rows = await self.db.fetchall(
            "SELECT s.id, s.name, "
            " (SELECT COUNT(*) FROM lead_offers o JOIN leads l ON l.id = o.lead_id "
            "   WHERE " + " AND ".join(["o.startup_id = s.id", "o.answered_at IS NULL", "l.status = 'offered'",
                                        "l.startup_id = s.id", *offered]) + ") AS waiting, "
            " (SELECT COUNT(*) FROM lead_history h WHERE " + " AND ".join(["h.startup_id = s.id", "h.status = 'expired'", *lapsed])
            + ") AS lapsed "
            "FROM startups s ORDER BY s.name, s.id",
            (*p1, *p2),
        )
        return [StartupLoad(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
