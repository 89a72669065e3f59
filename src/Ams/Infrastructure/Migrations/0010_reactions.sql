-- Reactions (api.md PUT/DELETE /api/messages/{id}/reactions/{emoji}): one row per message, emoji
-- and user. utf8mb4_bin: the unicode collations treat many different emoji as equal.
CREATE TABLE IF NOT EXISTS reactions (
    message_id BIGINT UNSIGNED NOT NULL,
    emoji VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    user_id BIGINT UNSIGNED NOT NULL,
    created_at DATETIME(3) NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
) ENGINE=InnoDB;

-- Each change of a reaction, for `event: reaction` replays (an event's subject_id is a row here).
CREATE TABLE IF NOT EXISTS reaction_changes (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    message_id BIGINT UNSIGNED NOT NULL,
    emoji VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    user_id BIGINT UNSIGNED NOT NULL,
    added BOOLEAN NOT NULL,
    created_at DATETIME(3) NOT NULL
) ENGINE=InnoDB;
