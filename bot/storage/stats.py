"""Funnel counts from SQLite, overall or for one state, sector or language.

Owner stages come from ``users`` and ``progress``; lead stages from ``leads`` and
``lead_history`` (a lead counts as accepted, listed or first-order if it ever reached that
status, even if it was lost later). State and sector are the owner's profile answers (the
lead's own copy when the owner has since erased their data); language is the chat language.
"""

from __future__ import annotations

from typing import Any

from ..core.funnel import Filters, FunnelCounts
from .db import Database

_ACCEPTED = ("accepted", "contacted", "listed", "first_order")
_LISTED = ("listed", "first_order")
_FIRST_ORDER = ("first_order",)


# The column each filter compares, for owners and for leads (whose owner may have erased their data).
_USER_COLUMNS = {
    "state": "json_extract(u.profile, '$.state')",
    "sector": "json_extract(u.profile, '$.sector')",
    "lang": "u.lang",
}
_LEAD_COLUMNS = {
    "state": "COALESCE(json_extract(u.profile, '$.state'), l.state)",
    "sector": "COALESCE(json_extract(u.profile, '$.sector'), l.sector)",
    "lang": "COALESCE(u.lang, l.lang)",
}


def _where(filters: Filters, columns: dict[str, str]) -> tuple[str, list[Any]]:
    clauses, params = ["1"], []
    for name, column in columns.items():
        value = getattr(filters, name)
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def _user_filters(filters: Filters) -> tuple[str, list[Any]]:
    return _where(filters, _USER_COLUMNS)


def _lead_filters(filters: Filters) -> tuple[str, list[Any]]:
    return _where(filters, _LEAD_COLUMNS)


def _reached(statuses: tuple[str, ...]) -> str:
    marks = ", ".join(f"'{s}'" for s in statuses)  # constants above, not user input
    return (
        f"(l.status IN ({marks}) OR EXISTS (SELECT 1 FROM lead_history h WHERE h.lead_id = l.id AND h.status IN ({marks})))"
    )


class SqliteStats:
    """Read-only counts for the funnel."""

    def __init__(self, db: Database):
        self.db = db

    async def funnel(self, filters: Filters, module_ids: list[str]) -> FunnelCounts:
        """How many owners reached each stage under ``filters``."""
        where, params = _user_filters(filters)
        row = await self.db.fetchone(
            "SELECT COUNT(*), COALESCE(SUM(u.consent = 'given'), 0), COALESCE(SUM(u.onboarded_at IS NOT NULL), 0) "
            f"FROM users u WHERE {where}",
            params,
        )
        passed = {m: 0 for m in module_ids}
        for r in await self.db.fetchall(
            f"SELECT p.module_id, COUNT(*) FROM progress p JOIN users u ON u.id = p.user_id WHERE p.passed = 1 AND {where} "
            "GROUP BY p.module_id",
            params,
        ):
            if r[0] in passed:
                passed[r[0]] = r[1]
        lead_where, lead_params = _lead_filters(filters)
        leads = await self.db.fetchone(
            "SELECT COUNT(*), "
            "COALESCE(SUM(l.startup_id IS NOT NULL OR EXISTS (SELECT 1 FROM lead_offers o WHERE o.lead_id = l.id)), 0), "
            f"COALESCE(SUM({_reached(_ACCEPTED)}), 0), COALESCE(SUM({_reached(_LISTED)}), 0), "
            f"COALESCE(SUM({_reached(_FIRST_ORDER)}), 0) "
            f"FROM leads l LEFT JOIN users u ON u.id = l.user_id WHERE {lead_where}",
            lead_params,
        )
        return FunnelCounts(
            first_message=row[0], consent=row[1], onboarded=row[2], modules=passed,
            qualified=leads[0], assigned=leads[1], accepted=leads[2], listed=leads[3], first_order=leads[4],
        )
