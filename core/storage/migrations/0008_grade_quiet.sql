-- Grades stored without a push (history, --no-notify, older than the relevance window) are not
-- «today's grades» in the digest either.
ALTER TABLE grades ADD COLUMN quiet INTEGER NOT NULL DEFAULT 0;
