-- Partner startups, their linked staff chats, invites, and the leads handed to them.

CREATE TABLE startups (
    id              TEXT    PRIMARY KEY,             -- stable slug from the registry file
    name            TEXT    NOT NULL,
    states          TEXT    NOT NULL DEFAULT '"*"',  -- JSON: "*" or a list of state ids
    sectors         TEXT    NOT NULL DEFAULT '"*"',  -- JSON: "*" or a list of sector ids
    languages       TEXT    NOT NULL DEFAULT '["hi", "en"]',
    weekly_capacity INTEGER NOT NULL DEFAULT 10,
    active          INTEGER NOT NULL DEFAULT 1,
    referral_code   TEXT    UNIQUE,                  -- owners arriving via /start ref_<code>
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- A chat linked to a startup through a single-use invite. Several staff per startup.
CREATE TABLE startup_staff (
    channel    TEXT    NOT NULL,
    chat_ref   TEXT    NOT NULL,
    startup_id TEXT    NOT NULL REFERENCES startups(id),
    name       TEXT,
    lang       TEXT    NOT NULL DEFAULT 'en',
    linked_at  INTEGER NOT NULL,
    blocked_at  INTEGER,                      -- the chat blocked the bot (403); cleared when it writes again
    blocked_row INTEGER NOT NULL DEFAULT 0,   -- last blocked outbox row already reported to the admins
    PRIMARY KEY (channel, chat_ref)
) WITHOUT ROWID;
CREATE INDEX staff_by_startup ON startup_staff (startup_id);

CREATE TABLE invites (
    code       TEXT    PRIMARY KEY,
    startup_id TEXT    NOT NULL REFERENCES startups(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    TEXT
) WITHOUT ROWID;

-- One lead per owner, created once when the owner qualifies.
CREATE TABLE leads (
    id                  INTEGER PRIMARY KEY,
    user_id             INTEGER UNIQUE REFERENCES users(id) ON DELETE SET NULL,
    score               INTEGER NOT NULL,
    reasons             TEXT    NOT NULL DEFAULT '[]', -- JSON: how the score was made up
    state               TEXT,
    sector              TEXT,
    lang                TEXT,
    referral_startup_id TEXT    REFERENCES startups(id),
    startup_id          TEXT    REFERENCES startups(id), -- current assignee; NULL while unassigned
    status              TEXT    NOT NULL,  -- unassigned|offered|accepted|contacted|listed|first_order|lost|withdrawn
    offered_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX leads_by_startup ON leads (startup_id, status, created_at);
CREATE INDEX leads_by_status ON leads (status, offered_at);

-- Every offer of a lead to a startup; the primary key makes a second offer impossible.
CREATE TABLE lead_offers (
    lead_id     INTEGER NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    startup_id  TEXT    NOT NULL REFERENCES startups(id),
    offered_at  INTEGER NOT NULL,
    answered_at INTEGER,
    outcome     TEXT,   -- accepted | declined | expired | withdrawn
    reason      TEXT,
    PRIMARY KEY (lead_id, startup_id)
) WITHOUT ROWID;

-- Every status change, timestamped: commissions are computed from this.
CREATE TABLE lead_history (
    id         INTEGER PRIMARY KEY,
    lead_id    INTEGER NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    status     TEXT    NOT NULL,
    startup_id TEXT,
    actor      TEXT,   -- who made the change: system, staff:<chat>, admin
    note       TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX lead_history_by_lead ON lead_history (lead_id, at);
CREATE INDEX lead_history_by_status ON lead_history (status, at);

-- Weekly load per startup (capacity share) and the last offer (round robin).
CREATE INDEX lead_offers_by_startup ON lead_offers (startup_id, offered_at);
-- Owners a startup brought through its referral link.
CREATE INDEX users_by_referral ON users (referral_code) WHERE referral_code IS NOT NULL;
