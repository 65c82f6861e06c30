-- Certificates for owners who passed the required modules. The code is what anyone can check
-- (/verify CODE); the names are a snapshot of what the certificate shows. An owner's erasure
-- revokes it: the row keeps only the code and the dates, so a check says "withdrawn".
CREATE TABLE certificates (
    code          TEXT    PRIMARY KEY,
    user_id       INTEGER UNIQUE REFERENCES users(id) ON DELETE SET NULL,
    lang          TEXT    NOT NULL,
    owner_name    TEXT    NOT NULL DEFAULT '',
    business_name TEXT    NOT NULL DEFAULT '',
    modules       TEXT    NOT NULL DEFAULT '[]',   -- module ids passed when it was issued (JSON)
    issued_at     INTEGER NOT NULL,
    revoked_at    INTEGER
) WITHOUT ROWID;
