-- Event kinds belong to the slices that own them, and some need longer names than 'message'
-- ('message.edited'); the column that held the message now holds whatever the kind is about.
ALTER TABLE events
    MODIFY kind VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    RENAME COLUMN message_id TO subject_id;
