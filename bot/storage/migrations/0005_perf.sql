-- Start-up and the lead sweep must not slow down as the outbox history grows (issue 6).
-- The outbox keeps every message ever queued (each broadcast adds a row per owner), but only a
-- handful are ever in flight or blocked at once. These partial indexes hold just those rows,
-- so the start-up recovery (rows left 'sending'/'claimed' by a crash) and the sweep's
-- blocked-staff check read a few index entries instead of the whole table.
CREATE INDEX outbox_sending ON outbox (id) WHERE status = 'sending';
CREATE INDEX outbox_claimed ON outbox (id) WHERE status = 'claimed';
CREATE INDEX outbox_blocked ON outbox (channel, chat_ref, id) WHERE status = 'blocked';
