using Ams.Infrastructure;
using Dapper;
using MySqlConnector;

namespace Ams.Features.SecurityHistory;

public sealed class EventRow
{
    public DateTime At { get; set; }
    public string Kind { get; set; } = "";
    public string Address { get; set; } = "";
    public string UserAgent { get; set; } = "";

    public SecurityEventView ToView() => new(DateTime.SpecifyKind(At, DateTimeKind.Utc), Kind, Address, UserAgent);
}

static class Sql
{
    public static Task<List<SecurityEventView>> LatestAsync(MariaDb db, long userId, int limit, CancellationToken ct) => db.ReadUnlessHungAsync(async connection =>
    {
        var rows = await connection.QueryAsync<EventRow>("""
            SELECT at AS At, kind AS Kind, address AS Address, user_agent AS UserAgent
            FROM security_events WHERE user_id = @userId ORDER BY id DESC LIMIT @limit
            """, new { userId, limit }, commandTimeout: connection.CommandTimeout());
        return rows.Select(r => r.ToView()).ToList();
    }, ct);

    internal sealed class Beyond
    {
        public long UserId { get; set; }
        /// <summary>The newest of the user's events past the ones kept; null when there are none.</summary>
        public long? LastDropped { get; set; }
    }

    /// <summary>The next <paramref name="batch"/> users after <paramref name="afterUserId"/>, each with the newest event past their newest <paramref name="keep"/>.</summary>
    public static async Task<List<Beyond>> BeyondAsync(MySqlConnection connection, long afterUserId, int batch, int keep) =>
        (await connection.QueryAsync<Beyond>("""
            SELECT u.id AS UserId,
                (SELECT e.id FROM security_events e WHERE e.user_id = u.id ORDER BY e.id DESC LIMIT 1 OFFSET @keep) AS LastDropped
            FROM users u WHERE u.id > @afterUserId ORDER BY u.id LIMIT @batch
            """, new { afterUserId, batch, keep }, commandTimeout: connection.CommandTimeout())).ToList();

    public const int DeleteBatch = 1000;

    /// <summary>Deletes up to <see cref="DeleteBatch"/> of the user's events up to <paramref name="upToId"/>, oldest first; how many.</summary>
    public static Task<int> DeleteUpToAsync(MySqlConnection connection, long userId, long upToId) =>
        connection.ExecuteAsync($"DELETE FROM security_events WHERE user_id = @userId AND id <= @upToId ORDER BY id LIMIT {DeleteBatch}",
            new { userId, upToId }, commandTimeout: connection.CommandTimeout());
}
