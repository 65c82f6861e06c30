-- Broadcasts: what admins sent to which segment, and the admin's /broadcast wizard.
-- The messages themselves are outbox rows (kind 'broadcast', batch_id = broadcasts.id,
-- dedup_key 'bc:<broadcast_id>:<user_id>', so nobody gets the same broadcast twice).
-- Outbox statuses used from here on, besides 0002's: 'claimed' (reserved by the delivery worker
-- but not yet handed to the platform; a restart puts it back to 'pending') and 'skipped' (a
-- broadcast row whose owner opted out, blocked the bot or withdrew consent after it was queued).

CREATE TABLE broadcasts (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL,            -- module | announcement
    module_id     TEXT,                        -- for kind 'module'
    text_en       TEXT,                        -- for kind 'announcement' (chat HTML, escaped)
    text_hi       TEXT,
    segment       TEXT    NOT NULL DEFAULT '{}', -- JSON: the conditions (bot/core/segments.py)
    recipients    INTEGER NOT NULL DEFAULT 0,  -- outbox rows enqueued
    send_at       INTEGER NOT NULL,            -- when delivery starts (the rows' not_before)
    status        TEXT    NOT NULL DEFAULT 'active', -- active | done | cancelled
    created_by    TEXT    NOT NULL,            -- 'telegram:<chat>' or 'cli'
    admin_channel TEXT,                        -- where the status message goes (NULL: nowhere)
    admin_chat    TEXT,
    admin_lang    TEXT    NOT NULL DEFAULT 'en',
    status_ref    TEXT,                        -- the status message being edited
    reported      INTEGER NOT NULL DEFAULT 0,  -- 1 once the final status was shown
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER
);
CREATE INDEX broadcasts_to_report ON broadcasts (id) WHERE status = 'active' OR reported = 0;

-- One admin chat's /broadcast wizard. The row stays after the wizard ends so ``seq`` keeps
-- growing: every button carries it, and a tap on an older screen is recognised as old.
CREATE TABLE broadcast_drafts (
    channel    TEXT    NOT NULL,
    chat_ref   TEXT    NOT NULL,
    seq        INTEGER NOT NULL DEFAULT 0,
    step       TEXT    NOT NULL DEFAULT 'done',
    data       TEXT    NOT NULL DEFAULT '{}',  -- JSON: what, module, texts, segment, send_at
    lang       TEXT    NOT NULL DEFAULT 'en',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (channel, chat_ref)
) WITHOUT ROWID;

-- Segments filter on the profile's state and sector; these keep a 1,00,000-owner count fast.
CREATE INDEX users_by_state ON users (json_extract(profile, '$.state'));
CREATE INDEX users_by_sector ON users (json_extract(profile, '$.sector'));
CREATE INDEX progress_by_module ON progress (module_id, passed);
-- The status message counts a broadcast's rows by status every few seconds: from the index alone.
CREATE INDEX outbox_broadcast_status ON outbox (batch_id, status, kind) WHERE kind = 'broadcast';
