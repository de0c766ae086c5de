-- When a conversation state was last written, so abandoned conversations can be forgotten.
ALTER TABLE fsm_state ADD COLUMN updated_at TEXT;
