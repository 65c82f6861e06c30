-- Retention (issue 14). A handled update's id is kept only as long as the platform may deliver
-- it again (Telegram: a day; WhatsApp: a week), then pruned by the daily maintenance; this index
-- makes the pruning a range scan instead of a pass over every id ever seen.
CREATE INDEX seen_updates_by_age ON seen_updates (channel, at);
