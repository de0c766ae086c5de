-- Messages sent as paid broadcasts (above Telegram's free rate), per school day.
CREATE TABLE paid_messages (
    day      TEXT PRIMARY KEY,  -- YYYY-MM-DD, school time
    messages INTEGER NOT NULL
) WITHOUT ROWID;
