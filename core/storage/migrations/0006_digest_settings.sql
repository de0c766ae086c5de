-- More per-account choices (NULL = the default), the daily digest's once-a-day decision, and the
-- weekly sign-off («Ознакомлен(а)»).
ALTER TABLE account_settings ADD COLUMN push_grades INTEGER;
ALTER TABLE account_settings ADD COLUMN push_dots INTEGER;
ALTER TABLE account_settings ADD COLUMN push_attendance INTEGER;
ALTER TABLE account_settings ADD COLUMN digest_enabled INTEGER;
ALTER TABLE account_settings ADD COLUMN digest_time TEXT;      -- 'HH:MM', school time
ALTER TABLE account_settings ADD COLUMN digest_empty INTEGER;  -- 1: send even with nothing new
ALTER TABLE account_settings ADD COLUMN muted_children TEXT;   -- JSON list of student ids

-- One row per account and school day once its digest was decided (sent or nothing to say), so a
-- second run, a restart or a second process never sends it twice.
CREATE TABLE digest_log (
    telegram_id INTEGER NOT NULL,
    day         TEXT NOT NULL,
    decided_at  TEXT NOT NULL,
    sent        INTEGER NOT NULL,
    PRIMARY KEY (telegram_id, day)
) WITHOUT ROWID;

CREATE TABLE signoffs (
    id          INTEGER PRIMARY KEY,
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    week_start  TEXT NOT NULL,            -- the Monday of the week signed for
    telegram_id INTEGER NOT NULL,
    guardian_id INTEGER REFERENCES guardians (id) ON DELETE SET NULL,
    signed_at   TEXT NOT NULL,
    UNIQUE (student_id, week_start, telegram_id)
);
CREATE INDEX signoffs_week ON signoffs (week_start);
