-- The last TOTP time step accepted for each user, kept where the secret is: Redis alone forgot it
-- when it lost its data, and a code used once then worked again within its window.
ALTER TABLE two_factor ADD COLUMN IF NOT EXISTS last_step BIGINT NULL;
