-- When a send claimed the upload (message_id 0). The sweeper leaves a claim alone while the send
-- may still be storing it, and takes it once no send can be (its node died between the claim and
-- the release): an expiry that went by the creation time alone deleted uploads a send had just
-- claimed, and the message answered 201 naming a file that was gone.
ALTER TABLE attachments ADD COLUMN IF NOT EXISTS claimed_at DATETIME(3) NULL;
