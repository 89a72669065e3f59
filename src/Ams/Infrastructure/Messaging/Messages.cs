using Ams.Infrastructure.Crypto;
using MySqlConnector;

namespace Ams.Infrastructure.Messaging;

/// <summary>A <c>messages</c> row joined with its sender, as the slices read it.</summary>
public sealed class MessageRow
{
    /// <summary>The select list for <c>messages m JOIN users u ON u.id = m.sender_id</c>.</summary>
    public const string Columns = """
        m.id AS Id, m.conversation_id AS ConversationId, m.sender_id AS SenderId, m.body AS Body, m.entropy AS Entropy,
        m.sent_at AS SentAt, u.username AS SenderUsername, u.display_name AS SenderDisplayName
        """;

    public long Id { get; set; }
    public long ConversationId { get; set; }
    public long SenderId { get; set; }
    public byte[] Body { get; set; } = [];
    public string Entropy { get; set; } = "";
    public DateTime SentAt { get; set; }
    public string SenderUsername { get; set; } = "";
    public string SenderDisplayName { get; set; } = "";

    /// <summary>What a body's ciphertext is bound to: a copy in another row does not open.</summary>
    public static string[] SealedFields(long id, long conversationId, long senderId) => [Ids.Of(id), Ids.Of(conversationId), Ids.Of(senderId)];
    public const string Purpose = "message";

    public async Task<MessageView> ToViewAsync(Envelope envelope) => new(
        Ids.Of(Id), Ids.Of(ConversationId), new MemberView(SenderUsername, SenderDisplayName),
        await envelope.OpenStringAsync(Body, Purpose, SealedFields(Id, ConversationId, SenderId)),
        DateTime.SpecifyKind(SentAt, DateTimeKind.Utc), Entropy);
}
