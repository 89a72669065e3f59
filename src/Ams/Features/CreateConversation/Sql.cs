using Dapper;
using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.CreateConversation;

static class Sql
{
    public sealed class UserIdRow
    {
        public long Id { get; set; }
        public string Username { get; set; } = "";
    }

    public static async Task<List<UserIdRow>> FindUsersAsync(MySqlConnection connection, string[] usernames) =>
        (await connection.QueryAsync<UserIdRow>(
            $"SELECT u.id AS Id, u.username AS Username FROM {SqlLists.NamesTable} JOIN users u ON u.username = names.name",
            new { names = SqlLists.Names(usernames) }, commandTimeout: connection.CommandTimeout())).ToList();

    /// <summary>
    /// A new group owned by its creator, the first of <paramref name="memberIds"/>, with an
    /// <c>event: conversation</c> for every member in the same transaction (their lists show it at
    /// once, not with its first message); the members in ascending order and their events' numbers.
    /// </summary>
    public static async Task<(long Id, long[] Members, long[] Seqs)> CreateGroupAsync(MySqlConnection connection, string? title, long[] memberIds, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        var id = await Conversations.InsertAsync(connection, transaction, Conversations.Group, title, null, memberIds, now, ownerId: memberIds[0]);
        var members = memberIds.Order().ToArray();
        var seqs = await EventLog.AppendAsync(connection, transaction,
            members.Select(m => new NewEvent(m, Features.GetConversation.ConversationEvents.Kind, id, id, memberIds[0])).ToList(), now);
        await transaction.CommitAsync();
        return (id, members, seqs);
    }
}
