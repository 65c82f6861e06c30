-- Messages that must not be lost: reminders, lead cards, notices, broadcasts.
-- A row is claimed ('sending') before it is sent and marked 'sent' right after, so a restart
-- never sends a 'sent' row again; a row left 'sending' by a crash is marked 'unknown' (it may
-- or may not have reached the user) rather than sent twice.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,
    chat_ref     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,           -- reminder | lead_card | notice | broadcast | …
    payload      TEXT    NOT NULL,           -- JSON: {"text", "choices": [[id, label]…], "columns"}
    dedup_key    TEXT    UNIQUE,             -- the same key is never enqueued twice
    batch_id     INTEGER,                    -- e.g. the broadcast this row belongs to
    status       TEXT    NOT NULL DEFAULT 'pending', -- pending|sending|sent|failed|blocked|cancelled|unknown
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    message_ref  TEXT,
    error        TEXT
);
CREATE INDEX outbox_due ON outbox (not_before, id) WHERE status = 'pending';
CREATE INDEX outbox_by_user ON outbox (user_id, kind);
CREATE INDEX outbox_by_batch ON outbox (batch_id, status);
CREATE INDEX users_last_seen ON users (last_seen_at);
