-- A WhatsApp status can overtake its message: Meta may report sent, delivered, read or failed
-- before the delivery worker has stored the message id its send returned. Such a status waits
-- here, durably, and is applied as soon as the id is stored (windows.apply_early); one that no
-- row ever claims (a message sent by another app on the same number) goes after a week.
-- No chat is named: only WhatsApp's message id and what it said.
CREATE TABLE early_statuses (
    channel     TEXT    NOT NULL,
    message_ref TEXT    NOT NULL,
    status      TEXT    NOT NULL,  -- sent | delivered | read | failed
    at          INTEGER NOT NULL,  -- WhatsApp's timestamp
    code        INTEGER,
    title       TEXT    NOT NULL DEFAULT '',
    received_at INTEGER NOT NULL,
    PRIMARY KEY (channel, message_ref, status)
) WITHOUT ROWID;
