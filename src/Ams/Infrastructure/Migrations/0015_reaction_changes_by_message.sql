-- Deleting a message deletes who reacted to it and how (reactions and their change log), so the
-- change log is found by message.
CREATE INDEX IF NOT EXISTS reaction_changes_message ON reaction_changes (message_id);
