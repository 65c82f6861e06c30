-- The web dashboard (bot/web): one-time sign-in links sent in chat, and the sessions they open.
-- Only a SHA-256 of each token is kept, so a copy of the database opens nobody's session.
-- Retention: a row is deleted once it has expired (bot/storage/dashboard.py prunes at each sign-in).
CREATE TABLE dashboard_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                -- 'link' (single use, 15 min) or 'session' (the cookie, 12 h)
    channel TEXT NOT NULL,             -- the chat the person is known by (staff link, admin id)
    chat_ref TEXT NOT NULL,
    platform_user_id INTEGER,          -- Telegram user id (admins are known by it)
    lang TEXT NOT NULL DEFAULT 'en',
    csrf TEXT,                         -- a session's CSRF token (random, not secret from its owner)
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX dashboard_tokens_expiry ON dashboard_tokens (expires_at);
