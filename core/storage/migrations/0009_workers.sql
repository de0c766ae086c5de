-- Long-running workers (the delivery worker, scheduled jobs, the poller) record that they are
-- alive and when they last made progress, so `diary status` can tell a stalled deployment.
CREATE TABLE workers (
    role        TEXT NOT NULL,              -- delivery, job:digest, …
    owner       TEXT NOT NULL,              -- host:pid of the process
    started_at  TEXT NOT NULL,
    beat_at     TEXT NOT NULL,              -- the last sign of life
    progress_at TEXT,                       -- the last time it got something done
    last_error  TEXT,                       -- the error of its last failed round, if it failed
    PRIMARY KEY (role, owner)
) WITHOUT ROWID;
