"""What a channel may use from the rest of the bot, and nothing more.

A channel (Telegram, WhatsApp, the terminal) parses platform updates into ``Inbound``, hands
them to the dispatcher and renders what comes back within its platform's limits. It sees the
bot through this ``Hub`` only: it imports neither the composition root (``bot.app``) nor
storage, so a channel can be added or changed without touching either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..core.messages import InboxItem
from ..i18n import Catalogs
from .conversation import ConversationService
from .dispatch import Dispatcher
from .replies import ReplyQueue
from .window import ChatWindows


class Inbox(Protocol):
    """Where updates are stored before they are acknowledged (``bot.storage.inbox.SqliteInbox``)."""

    async def put(self, channel: str, items: Sequence[InboxItem], now: int) -> None: ...

    def done(self, channel: str, update_id: str) -> None: ...

    async def pending(self, channel: str) -> list[InboxItem]: ...

    async def flush(self) -> None: ...


@dataclass
class Hub:
    """The services a channel talks to."""

    dispatcher: Dispatcher
    texts: Catalogs
    conversations: ConversationService
    replies: ReplyQueue | None = None
    inbox: Inbox | None = None
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    windows: ChatWindows | None = None  # WhatsApp's 24-hour window and status webhooks
