-- Per-account choices for class-wide pushes. NULL means the default: homework for tomorrow off,
-- timetable changes (a cancelled lesson today or tomorrow) on.
ALTER TABLE account_settings ADD COLUMN push_homework INTEGER;
ALTER TABLE account_settings ADD COLUMN push_timetable INTEGER;
