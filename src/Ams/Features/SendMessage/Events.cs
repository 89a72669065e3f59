using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary><c>event: message</c>: a new message, for every member of its conversation.</summary>
public sealed class MessageEvents(Envelope envelope) : EventKind<MessageView>(Kind, AppJsonContext.Default.MessageView)
{
    public const string Kind = "message";

    protected override string Html(MessageView payload, string viewerUsername) => MessageFragment.Of(payload, viewerUsername).Value;

    protected override Task<MessageView?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events) =>
        LoadAsync(connection, 0, events);

    /// <summary>A replay shows the message as it is now, its reactions as this recipient sees them.</summary>
    protected override async Task<MessageView?[]> LoadAsync(MySqlConnection connection, long userId, IReadOnlyList<StoredEvent> events)
    {
        var rows = (await connection.QueryAsync<MessageRow>(
            $"SELECT {MessageRow.Columns} FROM {SqlLists.IdsTable} JOIN messages m ON m.id = ids.id JOIN users u ON u.id = m.sender_id",
            new { ids = SqlLists.Ids(events.Select(e => e.SubjectId).Distinct()) }, commandTimeout: connection.CommandTimeout())).ToList();
        var byId = (await MessageRow.ToViewsAsync(connection, envelope, rows, userId)).ToDictionary(v => v.Id);
        var views = new MessageView?[events.Count];
        for (var i = 0; i < events.Count; i++)
            if (byId.TryGetValue(Ids.Of(events[i].SubjectId), out var view)) views[i] = view;
        return views;
    }
}
