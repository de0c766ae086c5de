-- Journal facts (grades, dots, attendance, homework, timetable, periods), the import ledger that
-- makes event ids idempotent, and the outbox every push goes through.

-- Every journal event id ever applied: importing an id again changes nothing and sends nothing.
CREATE TABLE journal_events (
    event_id   TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    applied_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE periods (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    start_date  TEXT NOT NULL,
    end_date    TEXT NOT NULL
);

CREATE TABLE grades (
    id          INTEGER PRIMARY KEY,
    external_id TEXT UNIQUE,              -- the journal's grade_id; NULL for a grade from a dot
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    date        TEXT NOT NULL,            -- YYYY-MM-DD, the lesson date
    value       INTEGER NOT NULL CHECK (value BETWEEN 1 AND 5),
    weight      INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 1),
    work        TEXT,                     -- form of control
    comment     TEXT,
    teacher     TEXT,
    set_at      TEXT,                     -- when the teacher put it (UTC), if the journal says
    dot_id      INTEGER,                  -- the dot it came from
    deleted_at  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX grades_student_subject ON grades (student_id, subject, date);

CREATE TABLE dots (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    date        TEXT NOT NULL,
    expires     TEXT NOT NULL,            -- open through this whole day, school time
    work        TEXT,
    comment     TEXT,
    teacher     TEXT,
    value       INTEGER,                  -- the grade it becomes on expiry, if any
    weight      INTEGER NOT NULL DEFAULT 1,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'graded', 'vanished')),
    closed_at   TEXT,
    grade_id    INTEGER REFERENCES grades (id),
    created_at  TEXT NOT NULL
);
CREATE INDEX dots_student ON dots (student_id, status);
CREATE INDEX dots_open ON dots (expires) WHERE status = 'open';

CREATE TABLE attendance (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    date        TEXT NOT NULL,
    lesson      INTEGER NOT NULL,
    subject     TEXT NOT NULL,
    mark        TEXT NOT NULL CHECK (mark IN ('absent', 'late')),
    excused     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX attendance_student ON attendance (student_id, date);

CREATE TABLE homework (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    class_id    INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    due         TEXT NOT NULL,
    text        TEXT NOT NULL,
    required    INTEGER NOT NULL DEFAULT 1,
    updated_at  TEXT NOT NULL
);
CREATE INDEX homework_class_due ON homework (class_id, due);

CREATE TABLE lessons (
    class_id    INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    date        TEXT NOT NULL,
    number      INTEGER NOT NULL,
    subject     TEXT NOT NULL,
    start_time  TEXT NOT NULL,
    end_time    TEXT NOT NULL,
    room        TEXT,
    teacher     TEXT,
    cancelled   INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (class_id, date, number)
) WITHOUT ROWID;

-- Pushes waiting for delivery. A row is written in the same transaction as the fact it announces
-- and is rendered at send time in the recipient's language. Rows for one recipient that are due
-- together go out as one message.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    telegram_id   INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    student_id    INTEGER,
    payload       TEXT NOT NULL,            -- JSON
    dedup_key     TEXT UNIQUE,              -- the same fact is never queued twice for one account
    created_at    TEXT NOT NULL,
    not_before    TEXT NOT NULL,            -- quiet hours, retry back-off, a chat's rate limit
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT,                     -- host:pid of the sender holding it
    claimed_until TEXT,                     -- the claim's lease
    sent_at       TEXT,
    dropped_at    TEXT,                     -- given up: recipient unreachable or a permanent error
    last_error    TEXT
);
CREATE INDEX outbox_pending ON outbox (not_before) WHERE sent_at IS NULL AND dropped_at IS NULL;
CREATE INDEX outbox_recipient ON outbox (telegram_id) WHERE sent_at IS NULL AND dropped_at IS NULL;

-- Per-account notification settings (more come with the settings screens).
CREATE TABLE account_settings (
    telegram_id INTEGER PRIMARY KEY REFERENCES accounts (telegram_id) ON DELETE CASCADE,
    quiet_hours TEXT                        -- 'HH:MM-HH:MM', '' for none; NULL: the default
);
