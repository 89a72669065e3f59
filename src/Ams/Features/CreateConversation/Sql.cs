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

    /// <summary>A new group owned by its creator, the first of <paramref name="memberIds"/>.</summary>
    public static async Task<long> CreateGroupAsync(MySqlConnection connection, string? title, long[] memberIds, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        var id = await Conversations.InsertAsync(connection, transaction, "group", title, null, memberIds, now, ownerId: memberIds[0]);
        await transaction.CommitAsync();
        return id;
    }
}
