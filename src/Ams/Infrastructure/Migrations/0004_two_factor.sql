-- The TOTP secret, sealed with the envelope (purpose 'totp-secret', bound to the user id).
-- Present but users.two_factor_enabled = false: enrolment pending confirmation.
CREATE TABLE IF NOT EXISTS two_factor (
    user_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    secret VARBINARY(128) NOT NULL,
    created_at DATETIME(3) NOT NULL
) ENGINE=InnoDB;

-- SHA-256 of each unused recovery code (60 random bits each), deleted when used.
CREATE TABLE IF NOT EXISTS recovery_codes (
    user_id BIGINT UNSIGNED NOT NULL,
    code_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) ENGINE=InnoDB;
