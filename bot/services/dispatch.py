"""Who is talking: route each inbound event to the owner conversation, startup staff or admins.

Roles are checked here, once, before any feature sees the event: admin commands only for the
configured ``ADMIN_IDS``, startup commands and lead buttons only for linked staff chats. Anyone
else gets the ordinary owner conversation, where an admin or staff command is just an unknown
command: nothing is revealed.

Features plug in as ``Role`` handlers. A handler's ``handle`` returns a ``Reply`` when the event
is its business and ``None`` to let the next one look; the owner conversation comes last and
takes everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..core.messages import Inbound, Tapped
from ..core.messages import UserKey
from .conversation import ConversationService, Reply
from .locks import KeyedLocks
from .replies import ReplyQueue


@dataclass(frozen=True)
class Who:
    """What the channel knows about the sender beyond the chat: platform user id and app language."""

    key: UserKey
    platform_user_id: int | None = None
    lang_hint: str | None = None
    update_id: str | None = None
    reply_to: Tapped | None = None  # the message whose button was tapped, if any


class Role(Protocol):
    """A feature that may claim an inbound event (staff, admin …)."""

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None: ...


class Dispatcher:
    """Tries each role handler in order, then the owner conversation."""

    def __init__(self, conversations: ConversationService, roles: list[Role] | None = None,
                 replies: ReplyQueue | None = None):
        self.conversations = conversations
        self.replies = replies
        self.roles: list[Role] = list(roles or [])
        # One user's events are handled in arrival order, whichever role takes them: a role's
        # own look-ups must not let a later message overtake an earlier /start.
        self.order = KeyedLocks()

    def add(self, role: Role) -> None:
        """Register a role handler (checked in the order added)."""
        self.roles.append(role)

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        """The reply to ``inbound``; ``None`` if the update was a repeat."""
        async with self.order.hold(who.key):
            for role in self.roles:
                reply = await role.handle(who, inbound)
                if reply is not None:
                    if self.replies is not None and not reply.queued:  # a role's replies go the same road
                        await self.replies.enqueue(user_id=reply.user_id or None, channel=who.key.channel,
                                                   chat_ref=who.key.user_ref, outputs=reply.outputs, reply_to=who.reply_to,
                                                   lang=reply.lang)
                        reply.queued = True
                    return reply
            return await self.conversations.handle(who.key, inbound, update_id=who.update_id, lang_hint=who.lang_hint,
                                                   reply_to=who.reply_to)
