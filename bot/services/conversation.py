"""The conversation service: load a user's session, run the engine, commit, return the replies.

Every answer is committed before the replies are returned to the channel, so a crash after a
reply was sent never loses the answer the user saw acknowledged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..core.engine import Engine
from ..core.messages import Event, Inbound, Outbound
from ..storage.sessions import SqliteSessionStore, UserKey
from .clock import Clock, SystemClock
from .locks import KeyedLocks

log = logging.getLogger(__name__)

EventHook = Callable[[int, UserKey, list[Event]], Awaitable[None]]


@dataclass
class Reply:
    """What the channel should render for one inbound event, and in which language."""

    outputs: list[Outbound]
    lang: str
    user_id: int
    events: list[Event]


class ConversationService:
    """Handles one user's inbound events in order, many users at once."""

    def __init__(self, engine: Engine, store: SqliteSessionStore, clock: Clock | None = None):
        self.engine = engine
        self.store = store
        self.clock = clock or SystemClock()
        self.locks = KeyedLocks()
        self.hooks: list[EventHook] = []

    def on_events(self, hook: EventHook) -> None:
        """Call ``hook`` after each committed turn that produced events (leads, notifications)."""
        self.hooks.append(hook)

    async def handle(
        self,
        key: UserKey,
        inbound: Inbound,
        *,
        update_id: str | None = None,
        lang_hint: str | None = None,
    ) -> Reply | None:
        """Handle ``inbound`` from ``key``; ``None`` if this update was already handled."""
        async with self.locks.hold(key):
            now = int(self.clock.now())
            fresh = self.engine.new_session(lang_hint, seed=random.getrandbits(31))
            loaded = await self.store.open_turn(key, update_id=update_id, new_session=fresh, now=now)
            if loaded is None:
                log.info("ignoring repeated update %s", update_id)
                return None
            turn = self.engine.handle(loaded.session, inbound)
            await self.store.save_turn(
                loaded.user_id, loaded.session, turn.session, turn.events, now=now, channel=key.channel, update_id=update_id
            )
        if turn.events:
            for hook in self.hooks:
                await hook(loaded.user_id, key, turn.events)
        return Reply(turn.outputs, turn.session.lang, loaded.user_id, turn.events)
