-- The HMAC key recovery codes are hashed under, as derived from each master key that has been
-- listed, sealed like any other secret: `--rotate-keys` re-wraps its data key, so codes made under
-- a master key keep working after that key is dropped (only their hashes are kept; they cannot be
-- hashed again under the new one).
CREATE TABLE IF NOT EXISTS recovery_code_keys (
    master_key_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    sealed VARBINARY(255) NOT NULL,
    created_at DATETIME(3) NOT NULL
) ENGINE=InnoDB;
