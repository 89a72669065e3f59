-- Idempotency-Key on POST /api/messages (api.md): a key is the sender's, written in the same
-- transaction as the message it names, so a send is either stored with its key or not at all.
-- The primary key makes a second send with the same key fail on every node, however they race.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    sender_id BIGINT UNSIGNED NOT NULL,
    idempotency_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    request_sha256 CHAR(64) CHARACTER SET ascii NOT NULL,
    message_id BIGINT UNSIGNED NOT NULL,
    created_at DATETIME(3) NOT NULL,
    PRIMARY KEY (sender_id, idempotency_key),
    KEY idempotency_keys_created (created_at)
) ENGINE=InnoDB;
