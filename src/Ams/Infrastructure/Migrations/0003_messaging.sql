CREATE TABLE IF NOT EXISTS conversations (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    title VARCHAR(100) NULL,
    -- 'lowUserId:highUserId' for direct conversations, so each pair has exactly one
    direct_key VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NULL,
    created_at DATETIME(3) NOT NULL,
    last_message_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
    last_activity_at DATETIME(3) NOT NULL,
    UNIQUE KEY conversations_direct (direct_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS conversation_members (
    conversation_id BIGINT UNSIGNED NOT NULL,
    user_id BIGINT UNSIGNED NOT NULL,
    -- a member added later sees only messages after this one
    joined_after_message_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
    last_read_message_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
    joined_at DATETIME(3) NOT NULL,
    PRIMARY KEY (conversation_id, user_id),
    KEY conversation_members_user (user_id, conversation_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS messages (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT UNSIGNED NOT NULL,
    sender_id BIGINT UNSIGNED NOT NULL,
    -- AES-256-GCM envelope (Infrastructure/Crypto/Envelope.cs); never plaintext
    body VARBINARY(16100) NOT NULL,
    entropy VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    sent_at DATETIME(3) NOT NULL,
    KEY messages_conversation (conversation_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Per-user event numbering: the counter row is locked until the sending transaction commits,
-- so one user's events commit in sequence order and Last-Event-ID replay never skips one.
CREATE TABLE IF NOT EXISTS user_event_seq (
    user_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    seq BIGINT UNSIGNED NOT NULL DEFAULT 0
) ENGINE=InnoDB;

-- The outbox and the replay log in one: written with the message, read by /api/events.
CREATE TABLE IF NOT EXISTS events (
    user_id BIGINT UNSIGNED NOT NULL,
    seq BIGINT UNSIGNED NOT NULL,
    kind VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    conversation_id BIGINT UNSIGNED NOT NULL,
    -- the message, or for 'read' the message read up to
    message_id BIGINT UNSIGNED NOT NULL,
    -- the sender, or the reader
    actor_id BIGINT UNSIGNED NOT NULL,
    created_at DATETIME(3) NOT NULL,
    PRIMARY KEY (user_id, seq)
) ENGINE=InnoDB;

INSERT IGNORE INTO user_event_seq (user_id) SELECT id FROM users;
