-- Foundation: schools, classes, students, guardians, Telegram accounts and their links,
-- one-time link codes, FSM state, import log, key-value meta.
-- Phones, e-mails and SNILS are stored only as keyed hashes (HMAC-SHA256, hex).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE schools (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE          -- '' for a single-school installation
);

CREATE TABLE classes (
    id        INTEGER PRIMARY KEY,
    school_id INTEGER NOT NULL REFERENCES schools (id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    UNIQUE (school_id, name)
);

CREATE TABLE students (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,  -- the school's own id; journal events refer to it
    school_id   INTEGER NOT NULL REFERENCES schools (id),
    class_id    INTEGER REFERENCES classes (id),
    last_name   TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    middle_name TEXT NOT NULL DEFAULT '',
    phone_hash  TEXT,
    email_hash  TEXT,
    snils_hash  TEXT,
    active      INTEGER NOT NULL DEFAULT 1,  -- 0: no longer on the roster; history is kept
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX students_class ON students (class_id);
CREATE INDEX students_phone ON students (phone_hash) WHERE phone_hash IS NOT NULL;

CREATE TABLE guardians (
    id          INTEGER PRIMARY KEY,
    last_name   TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    middle_name TEXT NOT NULL DEFAULT '',
    phone_hash  TEXT,
    email_hash  TEXT,
    snils_hash  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX guardians_phone ON guardians (phone_hash) WHERE phone_hash IS NOT NULL;
CREATE INDEX guardians_email ON guardians (email_hash) WHERE email_hash IS NOT NULL;
CREATE INDEX guardians_snils ON guardians (snils_hash) WHERE snils_hash IS NOT NULL;

CREATE TABLE guardianships (
    guardian_id INTEGER NOT NULL REFERENCES guardians (id) ON DELETE CASCADE,
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    relation    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (guardian_id, student_id)
);
CREATE INDEX guardianships_student ON guardianships (student_id);

CREATE TABLE accounts (
    telegram_id   INTEGER PRIMARY KEY,
    chat_id       INTEGER NOT NULL,
    locale        TEXT,          -- the user's explicit choice; NULL: follow Telegram's language
    language_code TEXT,          -- Telegram's language of the user, last seen
    phone_hash    TEXT,          -- the user's own number, as vouched for by Telegram
    unreachable_at TEXT,         -- set when Telegram answers 403; cleared on the next /start
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX accounts_phone ON accounts (phone_hash) WHERE phone_hash IS NOT NULL;

-- What an account is linked to: a guardian (and through them all their children) or a student.
CREATE TABLE account_links (
    id          INTEGER PRIMARY KEY,
    telegram_id INTEGER NOT NULL REFERENCES accounts (telegram_id) ON DELETE CASCADE,
    guardian_id INTEGER REFERENCES guardians (id) ON DELETE CASCADE,
    student_id  INTEGER REFERENCES students (id) ON DELETE CASCADE,
    via         TEXT NOT NULL CHECK (via IN ('phone', 'code', 'support', 'demo')),
    linked_at   TEXT NOT NULL,
    CHECK ((guardian_id IS NULL) <> (student_id IS NULL)),
    UNIQUE (telegram_id, guardian_id),
    UNIQUE (telegram_id, student_id)
);
CREATE INDEX account_links_guardian ON account_links (guardian_id);
CREATE INDEX account_links_student ON account_links (student_id);

CREATE TABLE link_codes (
    code_hash   TEXT PRIMARY KEY,
    guardian_id INTEGER REFERENCES guardians (id) ON DELETE CASCADE,
    student_id  INTEGER REFERENCES students (id) ON DELETE CASCADE,
    issued_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    used_by     INTEGER,
    CHECK ((guardian_id IS NULL) <> (student_id IS NULL))
);
CREATE INDEX link_codes_guardian ON link_codes (guardian_id);
CREATE INDEX link_codes_student ON link_codes (student_id);

-- Wrong codes typed by an account, for the lock-out (five in an hour lock entry for an hour).
CREATE TABLE code_failures (
    telegram_id INTEGER NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX code_failures_account ON code_failures (telegram_id, at);

-- aiogram FSM state, so a conversation survives a restart.
CREATE TABLE fsm_state (
    key   TEXT PRIMARY KEY,
    state TEXT,
    data  TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,   -- roster, journal
    source      TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    summary     TEXT NOT NULL    -- JSON
);
