using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure.Messaging;

/// <summary>A <c>messages</c> row joined with its sender, as the slices read it.</summary>
public sealed class MessageRow
{
    /// <summary>The select list for <c>messages m JOIN users u ON u.id = m.sender_id</c>.</summary>
    public const string Columns = """
        m.id AS Id, m.conversation_id AS ConversationId, m.sender_id AS SenderId, m.body AS Body, m.entropy AS Entropy,
        m.sent_at AS SentAt, m.edited_at AS EditedAt, m.deleted_at AS DeletedAt, u.username AS SenderUsername, u.display_name AS SenderDisplayName
        """;

    public long Id { get; set; }
    public long ConversationId { get; set; }
    public long SenderId { get; set; }
    public byte[] Body { get; set; } = [];
    public string Entropy { get; set; } = "";
    public DateTime SentAt { get; set; }
    public DateTime? EditedAt { get; set; }
    public DateTime? DeletedAt { get; set; }
    public string SenderUsername { get; set; } = "";
    public string SenderDisplayName { get; set; } = "";

    /// <summary>What a body's ciphertext is bound to: a copy in another row does not open.</summary>
    public static string[] SealedFields(long id, long conversationId, long senderId) => [Ids.Of(id), Ids.Of(conversationId), Ids.Of(senderId)];
    public const string Purpose = "message";

    /// <summary>The view of one message with its attachments (from <see cref="ToViewsAsync"/>'s lookup).</summary>
    public async Task<MessageView> ToViewAsync(Envelope envelope, IReadOnlyList<AttachmentView> attachments, IReadOnlyDictionary<Guid, byte[]> held) => DeletedAt is not null
        ? new(Ids.Of(Id), Ids.Of(ConversationId), new MemberView(SenderUsername, SenderDisplayName), null,
            DateTime.SpecifyKind(SentAt, DateTimeKind.Utc), Entropy, [], Deleted: true)
        : new(Ids.Of(Id), Ids.Of(ConversationId), new MemberView(SenderUsername, SenderDisplayName),
            await envelope.OpenStringAsync(Body, Purpose, SealedFields(Id, ConversationId, SenderId), held),
            DateTime.SpecifyKind(SentAt, DateTimeKind.Utc), Entropy, attachments,
            EditedAt: EditedAt is { } edited ? DateTime.SpecifyKind(edited, DateTimeKind.Utc) : null);

    /// <summary>
    /// The views of several messages, in order, as <paramref name="viewerId"/> sees them (their
    /// reactions' <c>me</c>), attachments and reactions read in one query each.
    /// </summary>
    public static async Task<List<MessageView>> ToViewsAsync(MySqlConnection connection, Envelope envelope, IReadOnlyList<MessageRow> rows, long viewerId = 0)
    {
        var (views, reactions) = await ToViewsWithReactionsAsync(connection, envelope, rows);
        for (var i = 0; i < views.Count; i++)
            if (!views[i].Deleted) views[i] = views[i] with { Reactions = Reactions.For(reactions, rows[i].Id, viewerId) };
        return views;
    }

    /// <summary>The views without reactions, and the reactions loaded for them, for callers that show one message to several viewers.</summary>
    public static async Task<(List<MessageView> Views, Dictionary<long, List<Reactions.Tally>> Reactions)> ToViewsWithReactionsAsync(
        MySqlConnection connection, Envelope envelope, IReadOnlyList<MessageRow> rows)
    {
        (rows, var held) = await WithTheirKeysAsync(connection, envelope, rows);
        var live = rows.Where(r => r.DeletedAt is null).Select(r => r.Id).ToList();
        var attachments = await AttachmentQueries.ForMessagesAsync(connection, envelope, live);
        var reactions = await Reactions.LoadAsync(connection, live);
        var views = new List<MessageView>(rows.Count);
        foreach (var row in rows)
            views.Add(await row.ToViewAsync(envelope, attachments.TryGetValue(row.Id, out var list) ? list : [], held));
        return (views, reactions);
    }

    /// <summary>
    /// The rows with the data keys to open them with. An edit or delete that commits after a row
    /// was read destroys the key that row's body is sealed under, so the body read a moment ago no
    /// longer opens and would show as undecryptable (<c>body: null</c>, logged as a missing key)
    /// though nothing is damaged: such rows are read again, as they are now, a few times at most.
    /// The keys are held from here on, so one forgotten meanwhile (the edit ran on this node) still
    /// opens what was read under it.
    /// </summary>
    static async Task<(IReadOnlyList<MessageRow> Rows, Dictionary<Guid, byte[]> Held)> WithTheirKeysAsync(
        MySqlConnection connection, Envelope envelope, IReadOnlyList<MessageRow> rows)
    {
        for (var attempt = 0; ; attempt++)
        {
            var keyIds = rows.Where(r => r.DeletedAt is null).Select(r => Envelope.KeyIdOf(r.Body)).ToList();
            await envelope.LoadKeysAsync(connection, keyIds);
            var held = envelope.Held(keyIds);
            var keyless = rows.Where(r => r.DeletedAt is null && Envelope.KeyIdOf(r.Body) is { } key && !held.ContainsKey(new Guid(key, bigEndian: true)))
                .Select(r => r.Id).ToList();
            if (keyless.Count == 0 || attempt == 3) return (rows, held);
            var now = (await connection.QueryAsync<MessageRow>(
                $"SELECT {Columns} FROM {SqlLists.IdsTable} JOIN messages m ON m.id = ids.id JOIN users u ON u.id = m.sender_id",
                new { ids = SqlLists.Ids(keyless) }, commandTimeout: connection.CommandTimeout())).ToDictionary(r => r.Id);
            // Rows that read the same again have lost their key for good: left to show as undecryptable.
            bool Changed(MessageRow row) => now.TryGetValue(row.Id, out var again) && (again.DeletedAt is not null || !again.Body.AsSpan().SequenceEqual(row.Body));
            if (!rows.Any(Changed)) return (rows, held);
            rows = rows.Select(r => Changed(r) ? now[r.Id] : r).ToList();
        }
    }

    /// <summary>The current views of messages by id (missing ids are absent), their attachments read in one query.</summary>
    public static async Task<Dictionary<long, MessageView>> LoadAsync(MySqlConnection connection, Envelope envelope, IEnumerable<long> ids, long viewerId = 0)
    {
        var rows = (await connection.QueryAsync<MessageRow>(
            $"SELECT {Columns} FROM {SqlLists.IdsTable} JOIN messages m ON m.id = ids.id JOIN users u ON u.id = m.sender_id",
            new { ids = SqlLists.Ids(ids.Distinct()) }, commandTimeout: connection.CommandTimeout())).ToList();
        var views = await ToViewsAsync(connection, envelope, rows, viewerId);
        var byId = new Dictionary<long, MessageView>(rows.Count);
        for (var i = 0; i < rows.Count; i++) byId[rows[i].Id] = views[i];
        return byId;
    }
}
