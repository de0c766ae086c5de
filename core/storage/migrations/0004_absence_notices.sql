-- Absence notices filed by parents (МЭШ «Уведомление об отсутствии»): whole days of a date range,
-- or some lessons of one day.
CREATE TABLE absence_notices (
    id          INTEGER PRIMARY KEY,
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    filed_by    INTEGER NOT NULL,          -- the guardian's Telegram account
    guardian_id INTEGER REFERENCES guardians (id) ON DELETE SET NULL,
    start_date  TEXT NOT NULL,
    end_date    TEXT NOT NULL,
    lessons     TEXT,                      -- JSON list of lesson numbers; NULL: whole days
    reason      TEXT NOT NULL CHECK (reason IN ('illness', 'family', 'medical', 'other')),
    comment     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    cancelled_at TEXT,
    CHECK (end_date >= start_date)
);
CREATE INDEX absence_notices_student ON absence_notices (student_id, start_date);
