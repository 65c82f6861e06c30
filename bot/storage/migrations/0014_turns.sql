-- Several bot processes may share one database (PostgreSQL): a user's turns are numbered, and a
-- turn is saved only if no other turn of that user was saved since it read the session (else it is
-- read again and redone), so two workers never both build on the same state.
ALTER TABLE users ADD COLUMN turns INTEGER NOT NULL DEFAULT 0;
