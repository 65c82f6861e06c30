-- An owner's erasure withdraws their lead in the same transaction; telling the startup's staff
-- (a message per staff chat, in each one's language) follows, and is retried by the lead sweep
-- until done. This flag says a lead's staff are still owed that message.
ALTER TABLE leads ADD COLUMN notice_owed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX leads_notice_owed ON leads (id) WHERE notice_owed = 1;
