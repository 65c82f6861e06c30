"""The features the owner conversation runs with (the composition root passes them to the engine)."""

from __future__ import annotations

from . import leads, training
from .router import Feature


def standard() -> list[Feature]:
    """Training (menu, lessons, quizzes, reminder switches) and export readiness (/score)."""
    return [training.FEATURE, leads.FEATURE]
