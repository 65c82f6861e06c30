-- As SQLite's 0014: a user's turns are numbered; a turn is saved only on top of the one it read.
ALTER TABLE users ADD COLUMN turns BIGINT NOT NULL DEFAULT 0;
