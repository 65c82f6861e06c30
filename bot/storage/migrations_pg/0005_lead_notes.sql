-- As SQLite's 0016.
-- The staff dashboard's note and follow-up date per lead (bot/web, bot/storage/dashboard.py).
-- One row per lead and startup: a startup sees and changes only its own row, so a lead passed
-- on to another startup does not carry the first one's note with it.
-- The note is personal data about the owner's business: erasing the owner (/delete_my_data)
-- deletes the lead's rows (bot/storage/leads.py, withdraw_lead_of).
CREATE TABLE lead_notes (
    lead_id BIGINT NOT NULL,
    startup_id TEXT NOT NULL,
    note TEXT,                         -- at most 1,000 characters, trimmed; NULL when there is none
    note_by TEXT,                      -- the staff chat that wrote it, as "channel:chat_ref"
    note_at BIGINT,
    follow_up TEXT,                    -- a day in India time, YYYY-MM-DD; NULL when none is set
    follow_up_by TEXT,
    follow_up_at BIGINT,
    PRIMARY KEY (lead_id, startup_id)
);
CREATE INDEX lead_notes_follow_up ON lead_notes (startup_id, follow_up);
