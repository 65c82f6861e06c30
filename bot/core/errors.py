"""Errors every layer may name without importing the layer that raises them."""

from __future__ import annotations


class StorageError(RuntimeError):
    """The database could not do what was asked (disk full, locked, corrupt)."""


class TurnConflict(StorageError):
    """Another process saved a turn of the same user since this turn read it: read again and redo it."""
