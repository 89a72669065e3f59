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
}
