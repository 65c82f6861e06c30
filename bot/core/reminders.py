"""When to nudge an owner who started a module and went quiet (pure rules, tested with a fake clock).

- only someone with a module in progress (started, not passed) who has been silent 48 hours;
- at most one nudge every 72 hours, and three in all since they were last active;
- never between 21:00 and 09:00 India time;
- never to someone who opted out (/stop_reminders) or blocked the bot.
"""

from __future__ import annotations

from dataclasses import dataclass

SILENCE = 48 * 3600
SPACING = 72 * 3600
MAX_NUDGES = 3
IST_OFFSET = 5 * 3600 + 30 * 60
QUIET_FROM, QUIET_UNTIL = 21, 9  # India time, hours


@dataclass(frozen=True)
class ReminderFacts:
    """What the rules need to know about one owner."""

    last_active: int
    nudges_since_active: int
    last_nudge: int | None
    opted_out: bool
    blocked: bool
    module_in_progress: str | None


def india_hour(now: float) -> int:
    """The hour of the day in India (UTC+5:30) at ``now``."""
    return int(((now + IST_OFFSET) % 86400) // 3600)


def quiet_hours(now: float) -> bool:
    """Whether ``now`` is between 21:00 and 09:00 India time."""
    hour = india_hour(now)
    return hour >= QUIET_FROM or hour < QUIET_UNTIL


def should_nudge(facts: ReminderFacts, now: float) -> bool:
    """Whether this owner should get a reminder at ``now``."""
    if facts.opted_out or facts.blocked or facts.module_in_progress is None:
        return False
    if quiet_hours(now) or now - facts.last_active < SILENCE:
        return False
    if facts.nudges_since_active >= MAX_NUDGES:
        return False
    return facts.last_nudge is None or now - facts.last_nudge >= SPACING
