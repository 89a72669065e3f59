using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure.Messaging;

/// <summary>api.md's <c>message.reactions[]</c> entry, as one viewer sees it (<see cref="Me"/>: the viewer reacted with it).</summary>
public sealed record ReactionView(string Emoji, int Count, bool Me);

/// <summary>
/// Reactions as every message view reads them: per message, each emoji with who reacted, in the
/// order the emoji first appeared. <c>me</c> depends on the viewer, so one load serves any viewer.
/// </summary>
public static class Reactions
{
    public sealed record Tally(string Emoji, List<long> Users);

    internal sealed class Row
    {
        public long MessageId { get; set; }
        public string Emoji { get; set; } = "";
        public long UserId { get; set; }
    }

    public static async Task<Dictionary<long, List<Tally>>> LoadAsync(MySqlConnection connection, IEnumerable<long> messageIds)
    {
        var ids = messageIds.Distinct().ToList();
        var byMessage = new Dictionary<long, List<Tally>>();
        if (ids.Count == 0) return byMessage;
        var rows = await connection.QueryAsync<Row>($"""
            SELECT r.message_id AS MessageId, r.emoji AS Emoji, r.user_id AS UserId
            FROM {SqlLists.IdsTable} JOIN reactions r ON r.message_id = ids.id
            ORDER BY r.message_id, r.created_at, r.user_id
            """, new { ids = SqlLists.Ids(ids) }, commandTimeout: connection.CommandTimeout());
        foreach (var row in rows)
        {
            if (!byMessage.TryGetValue(row.MessageId, out var tallies)) byMessage[row.MessageId] = tallies = [];
            // Rows from before each emoji had one spelling are counted under it, each user once.
            var emoji = Emoji.Canonical(row.Emoji);
            var tally = tallies.Find(t => t.Emoji == emoji);
            if (tally is null) tallies.Add(tally = new Tally(emoji, []));
            if (!tally.Users.Contains(row.UserId)) tally.Users.Add(row.UserId);
        }
        return byMessage;
    }

    /// <summary>One message's reactions as <paramref name="viewerId"/> sees them.</summary>
    public static IReadOnlyList<ReactionView> For(Dictionary<long, List<Tally>> loaded, long messageId, long viewerId) =>
        loaded.TryGetValue(messageId, out var tallies)
            ? tallies.Select(t => new ReactionView(t.Emoji, t.Users.Count, t.Users.Contains(viewerId))).ToList()
            : [];
}
