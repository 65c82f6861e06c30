-- Owners and their conversation state, training progress, quiz answers and the event log.
-- Times are whole seconds since the Unix epoch (UTC).

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    channel         TEXT    NOT NULL,              -- telegram | whatsapp | console
    user_ref        TEXT    NOT NULL,              -- the chat/user id on that channel
    lang            TEXT    NOT NULL DEFAULT 'hi',
    state           TEXT    NOT NULL DEFAULT '{}', -- where the user is: flow, step, seq, draft (JSON)
    profile         TEXT    NOT NULL DEFAULT '{}', -- onboarding answers by field (JSON)
    consent         TEXT    NOT NULL DEFAULT '',   -- '', 'given', 'refused'
    consent_at      INTEGER,
    consent_version INTEGER,
    consent_lang    TEXT,
    onboarded_at    INTEGER,
    referral_code   TEXT,
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    blocked_at      INTEGER,                       -- the bot was blocked (403) at this time
    reminders_off   INTEGER NOT NULL DEFAULT 0,
    broadcasts_off  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (channel, user_ref)
);

CREATE TABLE progress (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    module_id   TEXT    NOT NULL,
    lesson      INTEGER NOT NULL DEFAULT 0,
    attempt     INTEGER NOT NULL DEFAULT 0,
    question    INTEGER NOT NULL DEFAULT 0,
    score       INTEGER NOT NULL DEFAULT 0,
    best        INTEGER,
    passed      INTEGER NOT NULL DEFAULT 0,
    in_quiz     INTEGER NOT NULL DEFAULT 0,
    started_at  INTEGER NOT NULL,
    passed_at   INTEGER,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, module_id)
) WITHOUT ROWID;

CREATE TABLE quiz_answers (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    module_id   TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    question_id TEXT    NOT NULL,
    option_id   TEXT    NOT NULL,
    correct     INTEGER NOT NULL,
    answered_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, module_id, attempt, question_id)
) WITHOUT ROWID;

CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    kind    TEXT    NOT NULL,
    data    TEXT    NOT NULL DEFAULT '{}',
    at      INTEGER NOT NULL
);
CREATE INDEX events_by_kind ON events (kind, at);
CREATE INDEX events_by_user ON events (user_id, kind);

-- Platform update ids already handled, so a redelivered update is not handled twice.
CREATE TABLE seen_updates (
    channel   TEXT    NOT NULL,
    update_id TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (channel, update_id)
) WITHOUT ROWID;
