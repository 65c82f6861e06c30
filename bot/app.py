"""Wiring: settings → database, content, catalogs → engine → services. No globals."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .content import load_content
from .diagrams import DiagramBook
from .core import features
from .core.engine import Engine
from .i18n import Catalogs
from .services.broadcast import AdminRole, BroadcastService
from .services.certificates import CertificateRole, CertificateService
from .services.clock import Clock, SystemClock
from .services.conversation import ConversationService
from .services.dashboard import DashboardRole, DashboardService
from .services.delivery import DeliveryWorker, Sender
from .services.dispatch import Dispatcher
from .services.hub import Hub
from .services.leads import LeadService, StaffRole
from .services.maintenance import MaintenanceService
from .services.privacy import ForeignContactRole, PrivacyRole
from .services.reminders import ReminderService
from .services.replies import ReplyQueue
from .services.stats import StatsService
from .services.window import ChatWindows
from .storage.dashboard import SqliteDashboard
from .storage.db import Database, open_database
from .storage.inbox import SqliteInbox
from .storage.outbox import SqliteOutbox
from .storage.privacy import SqlitePrivacyRecords
from .storage.reminders import SqliteReminderCandidates
from .storage.sessions import SqliteSessionStore
from .storage.windows import SqliteWindows
from .templates import load_templates

log = logging.getLogger(__name__)
REPLY_LEASE = 30  # seconds a reply may be "sending" in one process before another sends it (its process died): past any send timeout


@dataclass
class App:
    """Everything a channel needs, built once at start-up."""

    settings: Settings
    db: Database
    texts: Catalogs
    engine: Engine
    conversations: ConversationService
    clock: Clock
    outbox: SqliteOutbox
    reminders: ReminderService
    dispatcher: Dispatcher
    leads: LeadService | None = None
    broadcasts: BroadcastService | None = None
    replies: ReplyQueue | None = None
    inbox: SqliteInbox | None = None
    certificates: CertificateService | None = None
    maintenance: MaintenanceService | None = None
    windows: ChatWindows | None = None
    dashboard: DashboardService | None = None

    def delivery(self, senders: dict[str, Sender], **options: float) -> DeliveryWorker:
        """A delivery worker for this app's outbox with the given channel senders (WhatsApp alone: its own rate)."""
        options.setdefault("rate", self.settings.whatsapp_rate if set(senders) == {"whatsapp"} else self.settings.broadcast_rate)
        return DeliveryWorker(self.outbox, senders, clock=self.clock, windows=self.windows, **options)

    @property
    def hub(self) -> Hub:
        """What the channels may use."""
        return Hub(self.dispatcher, self.texts, self.conversations, self.replies, self.inbox, self.settings.admin_ids,
                   self.windows)

    async def close(self) -> None:
        """Forget the handled updates still listed, then release the database."""
        if self.inbox is not None:
            try:
                await self.inbox.flush()
            except Exception:  # noqa: BLE001 - they are handled again (not twice: the turn knows its update)
                log.warning("could not clear handled updates from the inbox", exc_info=True)
        await self.db.close()


async def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    content_dir: Path | None = None,
    locales_dir: Path | None = None,
) -> App:
    """Load content and catalogs, open the database and build the services."""
    content = load_content(content_dir)
    texts = Catalogs.load(locales_dir)
    db = await open_database(settings)
    clock = clock or SystemClock()
    engine = Engine(content, texts, features.standard())
    outbox = SqliteOutbox(db)
    replies = ReplyQueue(outbox, clock, pictures=DiagramBook(content, texts).png)
    if db.engine == "postgresql":  # several bot processes may share it: only a dead one's replies are taken over
        replies.lease = REPLY_LEASE
    conversations = ConversationService(engine, SqliteSessionStore(db), clock, replies)
    reminders = ReminderService(SqliteReminderCandidates(db), outbox, content, texts, clock)
    records = SqlitePrivacyRecords(db)
    dispatcher = Dispatcher(conversations, [PrivacyRole(records, engine, texts), ForeignContactRole(records, conversations, texts)],
                            replies)
    leads = LeadService(db, outbox, content, texts, clock, settings)
    conversations.on_events(leads.on_events)
    dispatcher.add(StaffRole(leads))
    certificates = CertificateService(db, content, texts, clock, replies, settings.bot_username)
    conversations.on_events(certificates.on_events)
    dispatcher.add(CertificateRole(certificates))
    broadcasts = BroadcastService(db, content, texts, clock, rate=settings.broadcast_rate)
    windows = ChatWindows(SqliteWindows(db), load_templates(content_dir), content, texts, clock)
    broadcasts.windows = windows  # the preview counts who is outside WhatsApp's window
    stats = StatsService(db, content, texts)
    stats.windows = windows  # /stats shows what waits for users to write
    dispatcher.add(AdminRole(broadcasts, stats, settings.admin_ids, settings.whatsapp_admin_numbers))
    dashboard = DashboardService(SqliteDashboard(db), leads, stats, broadcasts.vocab, texts, clock, settings)
    if settings.dashboard_enabled:  # /dashboard answers only where a server carries the pages
        dispatcher.add(DashboardRole(dashboard))
    return App(settings, db, texts, engine, conversations, clock, outbox, reminders, dispatcher, broadcasts=broadcasts, leads=leads,
               replies=replies, inbox=SqliteInbox(db), certificates=certificates, maintenance=MaintenanceService(db, clock),
               windows=windows, dashboard=dashboard)
