"""The conversation service: load a user's session, run the engine, commit, send the replies.

A turn's new state, its events and its replies (as outbox rows) are committed in one
transaction; the replies go out right after, through the ``ReplyQueue``, which sends them again
after a failure or a crash. So a crash never loses an answer the user saw acknowledged, and
never leaves the user without the next question.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..core.engine import Engine
from ..core.errors import TurnConflict
from ..core.messages import Event, Inbound, Outbound, Tapped, UserKey
from ..core.session import TurnContext
from ..storage.sessions import SqliteSessionStore
from .clock import Clock, SystemClock
from .locks import KeyedLocks
from .replies import ReplyQueue

log = logging.getLogger(__name__)
TURN_ATTEMPTS = 5  # reads of a user's session per message when other bot processes keep saving theirs first

EventHook = Callable[[int, UserKey, list[Event]], Awaitable[None]]


@dataclass
class Reply:
    """What the channel should render for one inbound event, and in which language."""

    outputs: list[Outbound]
    lang: str
    user_id: int
    events: list[Event]
    queued: bool = False  # the outputs are in the outbox already: the channel renders only what is instant (a toast)


class ConversationService:
    """Handles one user's inbound events in order, many users at once."""

    def __init__(self, engine: Engine, store: SqliteSessionStore, clock: Clock | None = None,
                 replies: ReplyQueue | None = None):
        self.engine = engine
        self.store = store
        self.clock = clock or SystemClock()
        self.replies = replies
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
        reply_to: Tapped | None = None,
    ) -> Reply | None:
        """Handle ``inbound`` from ``key``; ``None`` if this update was already handled."""
        async with self.locks.hold(key):
            for attempt in range(TURN_ATTEMPTS):
                now = int(self.clock.now())
                fresh = self.engine.new_session(lang_hint, seed=random.getrandbits(31))
                loaded = await self.store.open_turn(key, update_id=update_id, new_session=fresh, now=now)
                if loaded is None:
                    log.info("ignoring repeated update %s", update_id)
                    return None
                turn = self.engine.handle(loaded.session, inbound)
                queue = self.replies
                close_contact = any(e.kind == "answer" and e.data.get("step_kind") == "phone" for e in turn.events)
                try:
                    rows = await self.store.save_turn(
                        loaded.user_id, loaded.session, turn.session, turn.events, now=now, channel=key.channel,
                        update_id=update_id, chat_ref=key.user_ref, replies=turn.outputs if queue is not None else (),
                        reply_to=reply_to, close_contact=close_contact, turns=loaded.turns,
                    )
                except TurnConflict:  # another bot process saved a turn of this user meanwhile: on top of it
                    if attempt + 1 == TURN_ATTEMPTS:
                        raise
                    log.info("turn redone: another process saved one for the same user first")
                    continue
                break
            if queue is not None:
                queue.send_soon(rows)
        if turn.events:
            for hook in self.hooks:
                await hook(loaded.user_id, key, turn.events)
        return Reply(turn.outputs, turn.session.lang, loaded.user_id, turn.events, queued=self.replies is not None)

    async def current_question(self, key: UserKey) -> tuple[list[Outbound], str]:
        """The user's current question asked again, and their language; read-only, nothing is saved.

        For a channel that pages a long list itself (WhatsApp's ten-row lists): the page asked
        for is cut from what the question is now, so a tap on an old page finds it gone.
        """
        loaded = await self.store.load(key, new_session=self.engine.new_session(None), now=int(self.clock.now()))
        scratch = TurnContext(loaded.session, self.engine.texts)
        self.engine.ask_current(scratch, again=True)
        return scratch.outputs, loaded.session.lang
