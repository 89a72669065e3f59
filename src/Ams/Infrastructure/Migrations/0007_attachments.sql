-- Encrypted file attachments (api.md "Attachments"). A file's bytes are sealed chunk by chunk
-- under its own data key (data_keys; Infrastructure/Files/ChunkCipher.cs); its name, type and
-- SHA-256 are sealed under the same key in `meta`. Nothing here is plaintext.
CREATE TABLE IF NOT EXISTS attachments (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    uploader_id BIGINT UNSIGNED NOT NULL,
    -- NULL until sent; 0 while a send that names it is being stored; then the message
    message_id BIGINT UNSIGNED NULL,
    position TINYINT UNSIGNED NOT NULL DEFAULT 0,
    -- 'uploading' while chunks arrive, 'ready' once the last one is stored
    state VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    size BIGINT UNSIGNED NOT NULL DEFAULT 0,
    chunk_size INT UNSIGNED NOT NULL,
    key_id BINARY(16) NOT NULL,
    nonce_prefix BINARY(4) NOT NULL,
    meta VARBINARY(2048) NOT NULL DEFAULT '',
    created_at DATETIME(3) NOT NULL,
    KEY attachments_uploader (uploader_id, message_id),
    KEY attachments_message (message_id, position),
    KEY attachments_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The sealed chunks (IChunkStore's MariaDB store): at most 256 KiB + a 16-byte tag each.
CREATE TABLE IF NOT EXISTS attachment_chunks (
    attachment_id BIGINT UNSIGNED NOT NULL,
    idx INT UNSIGNED NOT NULL,
    data MEDIUMBLOB NOT NULL,
    PRIMARY KEY (attachment_id, idx)
) ENGINE=InnoDB;

-- A deleted message keeps its row as a tombstone: its body emptied and its data key deleted.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS deleted_at DATETIME(3) NULL;
