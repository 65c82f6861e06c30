-- A broadcast's message is stored once per language on the broadcast (issue 14), not copied into
-- every recipient's outbox row (~0.85 KB each, 85 MB per broadcast to 1,00,000 owners). The
-- recipients' rows hold only which language they get: '{"broadcast": "hi"}' or '{"broadcast": "en"}'.
-- Rows queued before this migration keep their full copy and are sent as before.
ALTER TABLE broadcasts ADD COLUMN payload_en TEXT;
ALTER TABLE broadcasts ADD COLUMN payload_hi TEXT;
