-- One data key per sealed record, wrapped by a master key (key-encryption key). Rotation
-- re-wraps these rows only; the sealed records themselves never change.
CREATE TABLE IF NOT EXISTS data_keys (
    id BINARY(16) NOT NULL PRIMARY KEY,
    kek_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    wrapped VARBINARY(64) NOT NULL,
    entropy VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at DATETIME(3) NOT NULL,
    KEY data_keys_kek (kek_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
