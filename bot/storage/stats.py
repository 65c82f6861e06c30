"""Funnel counts from SQLite, overall or for one state, sector or language.

Owner stages come from ``users`` and ``progress``; lead stages from the owner's lead in
``leads`` and ``lead_history`` (a lead counts as accepted, listed or first-order if it ever
reached that status, even if it was lost later). Each stage also counts the owners who reached
a later one, so the path never grows. Owners who erased their data are left out (their lead no
longer points at them). State and sector are the owner's profile answers; language is the chat
language.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.funnel import Filters, FunnelCounts
from .db import Database

_ACCEPTED = ("accepted", "contacted", "listed", "first_order")
_LISTED = ("listed", "first_order")
_FIRST_ORDER = ("first_order",)


# The column each filter compares.
_USER_COLUMNS = {
    "state": "u.profile ->> 'state'",
    "sector": "u.profile ->> 'sector'",
    "lang": "u.lang",
}


def _where(filters: Filters, columns: dict[str, str]) -> tuple[str, list[Any]]:
    clauses, params = ["1 = 1"], []  # PostgreSQL's WHERE takes a boolean, not the number 1
    for name, column in columns.items():
        value = getattr(filters, name)
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


# An owner who erased their data and has not given consent again: no longer in the funnel.
_NOT_ERASED = ("NOT (u.consent != 'given' AND EXISTS (SELECT 1 FROM events e WHERE e.user_id = u.id AND e.kind = 'data_deleted'))")


def _user_filters(filters: Filters) -> tuple[str, list[Any]]:
    where, params = _where(filters, _USER_COLUMNS)
    # The dashboard's date range: owners whose first message falls in it (a cohort).
    for op, value in ((">=", filters.since), ("<", filters.until)):
        if value is not None:
            where += f" AND u.first_seen_at {op} ?"
            params.append(value)
    return where, params


def _reached(statuses: tuple[str, ...]) -> str:
    marks = ", ".join(f"'{s}'" for s in statuses)  # constants above, not user input
    return (
        f"(l.status IN ({marks}) OR EXISTS (SELECT 1 FROM lead_history h WHERE h.lead_id = l.id AND h.status IN ({marks})))"
    )


class SqliteStats:
    """Read-only counts for the funnel."""

    def __init__(self, db: Database):
        self.db = db

    async def funnel(self, filters: Filters, module_ids: list[str], required: Sequence[str] = ()) -> FunnelCounts:
        """How many owners reached each stage under ``filters`` (a stage counts those who reached a later one)."""
        where, params = _user_filters(filters)
        marks = ", ".join("?" * len(required)) or "NULL"
        # One row per owner with a flag per stage, then each stage ORed with every later one.
        row = await self.db.fetchone(
            "SELECT COUNT(*), "
            " COUNT(*) FILTER (WHERE cons OR onb OR core OR q OR asg OR ac OR li OR fo), "
            " COUNT(*) FILTER (WHERE onb OR core OR q OR asg OR ac OR li OR fo), "
            " COUNT(*) FILTER (WHERE core OR q OR asg OR ac OR li OR fo), "
            " COUNT(*) FILTER (WHERE q OR asg OR ac OR li OR fo), "
            " COUNT(*) FILTER (WHERE asg OR ac OR li OR fo), "
            " COUNT(*) FILTER (WHERE ac OR li OR fo), "
            " COUNT(*) FILTER (WHERE li OR fo), "
            " COUNT(*) FILTER (WHERE fo) "
            "FROM ("
            " SELECT u.consent = 'given' AS cons, u.consent = 'given' AND u.onboarded_at IS NOT NULL AS onb, "
            f"  ? > 0 AND (SELECT COUNT(*) FROM progress p WHERE p.user_id = u.id AND p.passed = 1 AND p.module_id IN ({marks})) = ? AS core, "
            "  l.id IS NOT NULL AS q, "
            "  l.id IS NOT NULL AND (l.startup_id IS NOT NULL OR EXISTS (SELECT 1 FROM lead_offers o WHERE o.lead_id = l.id)) AS asg, "
            f"  l.id IS NOT NULL AND {_reached(_ACCEPTED)} AS ac, l.id IS NOT NULL AND {_reached(_LISTED)} AS li, "
            f"  l.id IS NOT NULL AND {_reached(_FIRST_ORDER)} AS fo "
            f" FROM users u LEFT JOIN leads l ON l.user_id = u.id WHERE {where} AND {_NOT_ERASED}"
            ") AS reached",  # PostgreSQL names every subquery in FROM
            (len(required), *required, len(required), *params),
        )
        passed = {m: 0 for m in module_ids}
        for r in await self.db.fetchall(
            f"SELECT p.module_id, COUNT(*) FROM progress p JOIN users u ON u.id = p.user_id WHERE p.passed = 1 AND {where} "
            "GROUP BY p.module_id",
            params,
        ):
            if r[0] in passed:
                passed[r[0]] = r[1]
        return FunnelCounts(
            first_message=row[0], consent=row[1], onboarded=row[2], core=row[3], modules=passed,
            qualified=row[4], assigned=row[5], accepted=row[6], listed=row[7], first_order=row[8],
        )
