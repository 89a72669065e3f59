-- A group's owner (api.md `conversation.owner`): its creator, who alone renames it and removes
-- members. NULL for direct conversations, and for a group whose last member left.
ALTER TABLE conversations ADD COLUMN IF NOT EXISTS owner_id BIGINT UNSIGNED NULL;

-- Groups created before owners existed: the creator was not recorded, so the owner is the
-- founding member (earliest joined_at; the creator joined at creation with the others named then)
-- who sent the conversation's first message among them; if none of them has sent anything, the
-- founding member with the lowest user id (the longest-registered account).
UPDATE conversations c SET c.owner_id = (
    SELECT cm.user_id FROM conversation_members cm
    WHERE cm.conversation_id = c.id
    ORDER BY cm.joined_at,
             (SELECT MIN(m.id) FROM messages m WHERE m.conversation_id = cm.conversation_id AND m.sender_id = cm.user_id) IS NULL,
             (SELECT MIN(m.id) FROM messages m WHERE m.conversation_id = cm.conversation_id AND m.sender_id = cm.user_id),
             cm.user_id
    LIMIT 1)
WHERE c.kind = 'group' AND c.owner_id IS NULL;
