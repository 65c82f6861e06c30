-- WhatsApp (issue 11): the 24-hour customer-service window, template messages and status webhooks.
--
-- A chat's last inbound message, whoever wrote it (an owner, a startup's staff, an admin): outside
-- 24 hours of it WhatsApp takes only approved templates. users.last_seen_at is an owner's last turn
-- and staff chats have no users row, so the window has its own table, keyed by chat.
CREATE TABLE chat_inbound (
    channel   TEXT    NOT NULL,
    chat_ref  TEXT    NOT NULL,
    last_at   INTEGER NOT NULL,  -- the chat's last inbound message
    closed_at INTEGER,           -- WhatsApp refused a free-form message (131047) at this time
    PRIMARY KEY (channel, chat_ref)
) WITHOUT ROWID;
INSERT OR IGNORE INTO chat_inbound (channel, chat_ref, last_at)
    SELECT channel, user_ref, last_seen_at FROM users WHERE channel = 'whatsapp';

-- An outbox row may now be 'held' (status) with its reason in error: outside the window with no
-- template for its kind, or an "open" template sent and the full message waiting for the tap.
ALTER TABLE outbox ADD COLUMN template TEXT;     -- the approved template it went out as, if it did
ALTER TABLE outbox ADD COLUMN delivery TEXT;     -- what WhatsApp reported since: delivered | read | failed
ALTER TABLE outbox ADD COLUMN delivery_at INTEGER;
CREATE INDEX outbox_by_message_ref ON outbox (message_ref) WHERE message_ref IS NOT NULL;
CREATE INDEX outbox_held ON outbox (channel, chat_ref) WHERE status = 'held';
