using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.MarkRead;

/// <summary>A read receipt: <paramref name="Username"/> has read everything up to <paramref name="UpTo"/>.</summary>
public sealed record ReadView(string ConversationId, string Username, string UpTo);

/// <summary><c>event: read</c>: a member moved their read mark, for every member of the conversation.</summary>
public sealed class ReadEvents() : EventKind<ReadView>(Kind, MarkReadJson.Default.ReadView)
{
    public const string Kind = "read";

    protected override string Html(ReadView payload, string viewerUsername) => Fragments.Receipt(payload).Value;

    protected override async Task<ReadView?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events)
    {
        var readers = (await connection.QueryAsync<Reader>(
            $"SELECT u.id AS Id, u.username AS Username FROM {SqlLists.IdsTable} JOIN users u ON u.id = ids.id",
            new { ids = SqlLists.Ids(events.Select(e => e.ActorId).Distinct()) }, commandTimeout: connection.CommandTimeout())).ToDictionary(r => r.Id, r => r.Username);
        return events.Select(e => readers.TryGetValue(e.ActorId, out var username)
            ? new ReadView(Ids.Of(e.ConversationId), username, Ids.Of(e.SubjectId))
            : null).ToArray();
    }

    internal sealed class Reader
    {
        public long Id { get; set; }
        public string Username { get; set; } = "";
    }
}
