-- Trusted persons: a guardian invites someone by phone; access starts when they accept.
CREATE TABLE invitations (
    id            INTEGER PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,      -- the deep link's token, hashed
    inviter_tg    INTEGER NOT NULL,
    guardian_id   INTEGER NOT NULL REFERENCES guardians (id) ON DELETE CASCADE,
    phone_hash    TEXT NOT NULL,             -- the invitee's number, hashed
    surname       TEXT NOT NULL,             -- the invitee's surname, as the parent typed it
    students      TEXT NOT NULL,             -- JSON list of student ids
    scopes        TEXT NOT NULL,             -- comma-separated scopes
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'accepted', 'declined', 'expired', 'replaced',
                                    'ended')),
    invitee_tg    INTEGER,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    decided_at    TEXT
);
CREATE INDEX invitations_phone ON invitations (phone_hash, status);
CREATE INDEX invitations_pending ON invitations (expires_at) WHERE status = 'pending';

CREATE TABLE trusts (
    id            INTEGER PRIMARY KEY,
    student_id    INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    telegram_id   INTEGER NOT NULL REFERENCES accounts (telegram_id) ON DELETE CASCADE,
    guardian_id   INTEGER NOT NULL REFERENCES guardians (id) ON DELETE CASCADE,
    inviter_tg    INTEGER NOT NULL,
    invitation_id INTEGER REFERENCES invitations (id),
    surname       TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (student_id, telegram_id)
);
CREATE INDEX trusts_account ON trusts (telegram_id);
CREATE INDEX trusts_student ON trusts (student_id);

-- What the parents can read back: invited, accepted, declined, expired, revoked, left, ended.
CREATE TABLE trust_log (
    id          INTEGER PRIMARY KEY,
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    person      TEXT NOT NULL,
    actor_tg    INTEGER,
    at          TEXT NOT NULL
);
CREATE INDEX trust_log_student ON trust_log (student_id, at);
