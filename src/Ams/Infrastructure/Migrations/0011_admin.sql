-- Administration (api.md "Administration", "Registration modes and tokens"): disabled accounts
-- and invite codes. A disabled account cannot sign in; NULL = enabled.
ALTER TABLE users ADD COLUMN IF NOT EXISTS disabled_at DATETIME(3) NULL;

-- Invite codes for Registration__Mode=invite. Only the SHA-256 of a code is stored (the code is
-- 256 random bits, shown once by `Ams admin invite`), so a database dump holds no usable invite.
CREATE TABLE IF NOT EXISTS invites (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    code_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    uses_left INT UNSIGNED NOT NULL,
    created_at DATETIME(3) NOT NULL,
    UNIQUE KEY invites_code_hash (code_hash)
) ENGINE=InnoDB;
