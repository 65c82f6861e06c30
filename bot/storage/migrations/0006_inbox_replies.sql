-- Nothing lost between the platform and the database.
--
-- inbox: each update as the platform sent it, stored before the platform is told it arrived
-- (the webhook's 200, the offset of the next getUpdates). A row is deleted once its update was
-- handled; after a crash the rows left are handled again in order, and the turn's dedup row
-- (seen_updates) makes one that had already been handled a no-op.
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    channel     TEXT    NOT NULL,
    update_id   TEXT    NOT NULL,
    chat_ref    TEXT,                        -- whose it is: erasing a user's data erases their stored updates
    payload     TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (channel, update_id)
);
CREATE INDEX inbox_by_chat ON inbox (channel, chat_ref);

-- Replies (outbox kind 'reply') are written in the turn's own transaction and sent right
-- after it; a reply not yet confirmed sent is sent again after a restart. Sent replies are
-- deleted, so the outbox never keeps what owners were told in a conversation.
CREATE INDEX outbox_replies_due ON outbox (not_before, id) WHERE kind = 'reply' AND status = 'pending';
CREATE INDEX outbox_replies_open ON outbox (channel, chat_ref, id) WHERE kind = 'reply' AND status IN ('pending', 'sending');
