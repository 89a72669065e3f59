-- An edited message keeps its row and id; its body is re-sealed under a new data key (the old
-- key is deleted) and edited_at records the last edit.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS edited_at DATETIME(3) NULL;
