using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Infrastructure;

public sealed class AccessTokenRow
{
    public long Id { get; set; }
    public long UserId { get; set; }
    public string Name { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime? ExpiresAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
}

/// <summary>
/// Personal access tokens (api.md "Registration modes and tokens"): <c>amspat_</c> and 256 random
/// bits, shown once; MariaDB keeps only the SHA-256. They do not end when idle, may expire, and
/// are accepted wherever a session is, except on the account-security calls
/// (<see cref="AccessTokenScope"/>). Lookups are cached in Redis for a minute (which is also how
/// often <c>last_used_at</c> is written); a revocation deletes the row and overwrites the cache
/// entry with a tombstone, so the token stops on every node at once, and announces the token's
/// session id so its live streams close.
/// </summary>
public sealed class AccessTokenStore(MariaDb db, MariaDbCircuit circuit, RedisCircuit redis, TimeProvider time, ILogger<AccessTokenStore> logger)
{
    public const string TokenPrefix = "amspat_";
    const string SessionIdPrefix = "pat-";
    const string Revoked = "-";
    static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(1);
    static readonly TimeSpan TombstoneFor = TimeSpan.FromMinutes(5);

    public static bool IsAccessToken(string token) => token.StartsWith(TokenPrefix, StringComparison.Ordinal);

    /// <summary>The id a token's <see cref="Session"/> carries: never the token, never its hash.</summary>
    public static string SessionIdOf(long tokenId) => SessionIdPrefix + tokenId.ToString(CultureInfo.InvariantCulture);

    public static bool IsAccessTokenSessionId(string sessionId) => sessionId.StartsWith(SessionIdPrefix, StringComparison.Ordinal);

    /// <summary>The token id behind a token's session id; false for anything else.</summary>
    public static bool TryTokenIdOf(string sessionId, out long tokenId)
    {
        tokenId = 0;
        return IsAccessTokenSessionId(sessionId)
            && long.TryParse(sessionId.AsSpan(SessionIdPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out tokenId);
    }

    /// <summary>
    /// Live tokens an account may hold. Without a limit a script that makes a token per run fills
    /// the table, and every list of the account's tokens (unpaged) grows with it.
    /// </summary>
    public const int MostPerAccount = 100;

    /// <summary>A new token; <paramref name="lifetime"/> null: it never expires. Null when the account already holds <see cref="MostPerAccount"/> live tokens.</summary>
    public async Task<(string Token, AccessTokenRow Row)?> CreateAsync(long userId, string name, TimeSpan? lifetime)
    {
        var token = TokenPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var now = time.UtcNowMillis();
        var row = new AccessTokenRow { UserId = userId, Name = name, CreatedAt = now, ExpiresAt = now + lifetime };
        await using var connection = await db.OpenConnectionAsync();
        // The account's row, locked, makes two creations at once count one after the other.
        await using var transaction = await Transaction.BeginAsync(connection);
        await connection.ExecuteScalarAsync<long>("SELECT id FROM users WHERE id = @userId FOR UPDATE", new { userId }, commandTimeout: connection.CommandTimeout());
        var live = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM access_tokens WHERE user_id = @userId AND (expires_at IS NULL OR expires_at > @now)",
            new { userId, now }, commandTimeout: connection.CommandTimeout());
        if (live >= MostPerAccount) return null;
        row.Id = await connection.ExecuteScalarAsync<long>("""
            INSERT INTO access_tokens (user_id, name, token_hash, created_at, expires_at)
            VALUES (@UserId, @Name, @hash, @CreatedAt, @ExpiresAt);
            SELECT LAST_INSERT_ID();
            """, new { row.UserId, row.Name, hash = HashOf(token), row.CreatedAt, row.ExpiresAt }, commandTimeout: connection.CommandTimeout());
        await transaction.CommitAsync();
        return (token, row);
    }

    public Task<List<AccessTokenRow>> ListAsync(long userId) => db.ReadUnlessHungAsync(async connection =>
        (await connection.QueryAsync<AccessTokenRow>("""
            SELECT id AS Id, user_id AS UserId, name AS Name, created_at AS CreatedAt, expires_at AS ExpiresAt, last_used_at AS LastUsedAt
            FROM access_tokens WHERE user_id = @userId AND (expires_at IS NULL OR expires_at > @now) ORDER BY id DESC
            """, new { userId, now = time.UtcNowMillis() }, commandTimeout: connection.CommandTimeout())).ToList());

    /// <summary>The token's session, or null when it is unknown, revoked or expired.</summary>
    public async Task<Session?> FindAsync(string token)
    {
        if (!IsAccessToken(token) || token.Length > 64) return null;
        var hash = HashOf(token);
        var now = time.GetUtcNow();
        RedisValue cached = RedisValue.Null;
        try
        {
            cached = await redis.CallAsync(CacheKey(hash), r => r.StringGetAsync(CacheKey(hash)));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // MariaDB is the authority; Redis only saves it a query.
        }
        if (cached == Revoked) return null;
        if (cached.HasValue && Parse(cached!) is { } hit) return hit.ExpiresAt > now ? hit : null;

        // Given up with the reads once MariaDB is known to hang (a request authenticated by a token
        // must not wait out its timeouts first): the one write here, the token's last use, may then
        // land later or not at all, which nothing depends on. Authentication runs before the
        // circuit refuses requests, so it refuses this lookup itself.
        if (circuit.IsOpen) throw new MariaDbNotAnsweringException();
        var session = await db.ReadUnlessHungAsync(async connection =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<AccessTokenRow>(
                "SELECT id AS Id, user_id AS UserId, expires_at AS ExpiresAt FROM access_tokens WHERE token_hash = @hash", new { hash }, commandTimeout: connection.CommandTimeout());
            if (row is null) return null;
            var found = new Session(SessionIdOf(row.Id), row.UserId,
                row.ExpiresAt is { } e2 ? new DateTimeOffset(DateTime.SpecifyKind(e2, DateTimeKind.Utc)) : DateTimeOffset.MaxValue, IsAccessToken: true);
            if (found.ExpiresAt <= now) return null;
            await connection.ExecuteAsync("UPDATE access_tokens SET last_used_at = @now WHERE id = @id", new { id = row.Id, now = time.UtcNowMillis() }, commandTimeout: connection.CommandTimeout());
            return found;
        });
        if (session is null) return null;
        try
        {
            // NX: a revocation's tombstone written meanwhile wins.
            await redis.CallAsync(CacheKey(hash), r => r.StringSetAsync(CacheKey(hash), Format(session), CacheFor, When.NotExists));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
        }
        return session;
    }

    /// <summary>Whether the token behind this session id still works (a stream's periodic re-check).</summary>
    public async Task<bool> ExistsAsync(string sessionId)
    {
        if (!TryTokenIdOf(sessionId, out var id)) return false;
        await using var connection = await db.OpenConnectionAsync();
        return await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM access_tokens WHERE id = @id AND (expires_at IS NULL OR expires_at > @now)",
            new { id, now = time.UtcNowMillis() }, commandTimeout: connection.CommandTimeout()) > 0;
    }

    /// <summary>Revokes one of the user's tokens; false when the user has no such token.</summary>
    public async Task<bool> RevokeAsync(long userId, long tokenId)
    {
        await using var connection = await db.OpenConnectionAsync();
        var hashes = (await connection.QueryAsync<string>("SELECT token_hash FROM access_tokens WHERE id = @tokenId AND user_id = @userId",
            new { tokenId, userId }, commandTimeout: connection.CommandTimeout())).ToList();
        if (hashes.Count == 0) return false;
        await connection.ExecuteAsync("DELETE FROM access_tokens WHERE id = @tokenId AND user_id = @userId", new { tokenId, userId }, commandTimeout: connection.CommandTimeout());
        await ForgetAsync(hashes, [tokenId]);
        return true;
    }

    /// <summary>Revokes every token of the user (a password change, an administrator).</summary>
    public async Task RevokeAllAsync(long userId)
    {
        await using var connection = await db.OpenConnectionAsync();
        var rows = (await connection.QueryAsync<AccessTokenRow>("SELECT id AS Id, name AS Name FROM access_tokens WHERE user_id = @userId",
            new { userId }, commandTimeout: connection.CommandTimeout())).ToList();
        if (rows.Count == 0) return;
        var hashes = (await connection.QueryAsync<string>("SELECT token_hash FROM access_tokens WHERE user_id = @userId", new { userId }, commandTimeout: connection.CommandTimeout())).ToList();
        await connection.ExecuteAsync("DELETE FROM access_tokens WHERE user_id = @userId", new { userId }, commandTimeout: connection.CommandTimeout());
        await ForgetAsync(hashes, rows.Select(r => r.Id).ToList());
    }

    async Task ForgetAsync(List<string> hashes, List<long> ids)
    {
        try
        {
            foreach (var hash in hashes) await redis.CallAsync(CacheKey(hash), r => r.StringSetAsync(CacheKey(hash), Revoked, TombstoneFor));
            foreach (var id in ids) await redis.PublishAsync(SessionStore.RevokedChannel, SessionIdOf(id));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // The row is gone, so nodes that reach MariaDB without Redis refuse it already; a cached
            // entry written before the outage lives at most a minute.
            logger.LogWarning("Token revocation could not reach Redis ({Error}); cached lookups expire within {Seconds} s",
                Redis.Brief(e), CacheFor.TotalSeconds);
        }
    }

    static string Format(Session s) =>
        $"{s.UserId.ToString(CultureInfo.InvariantCulture)}|{s.Id}|{(s.ExpiresAt == DateTimeOffset.MaxValue ? 0 : s.ExpiresAt.ToUnixTimeMilliseconds()).ToString(CultureInfo.InvariantCulture)}";

    static Session? Parse(string value)
    {
        var parts = value.Split('|');
        if (parts.Length != 3
            || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var userId)
            || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var expires)) return null;
        return new Session(parts[1], userId, expires == 0 ? DateTimeOffset.MaxValue : DateTimeOffset.FromUnixTimeMilliseconds(expires), IsAccessToken: true);
    }

    static string HashOf(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    static string CacheKey(string hash) => $"{Redis.KeyPrefix}pat:{hash}";
}

/// <summary>
/// The one rule that keeps personal access tokens off the account's security: the 2FA, account,
/// session and token calls (and their browser forms) answer 403 to a token, whatever the endpoint.
/// </summary>
public static class AccessTokenScope
{
    static readonly string[] Refused = ["/api/2fa", "/api/account", "/api/sessions", "/api/tokens", "/settings"];

    public static bool IsAccountSecurity(PathString path) => Refused.Any(p => path.StartsWithSegments(p, StringComparison.OrdinalIgnoreCase));

    /// <summary>After authentication: a token on an account-security call is refused before any endpoint runs.</summary>
    public static IApplicationBuilder UseAccessTokenScope(this IApplicationBuilder app) => app.Use((http, next) =>
        // Not async: a pass-through holds no state machine for the request's lifetime (see RequestLimits.UseBodySizeLimit).
        http.Items[typeof(Session)] is Session { IsAccessToken: true } && IsAccountSecurity(http.Request.Path)
            ? Problem.WriteAsync(http, StatusCodes.Status403Forbidden, "Not allowed with a personal access token",
                "Account security calls need a signed-in session, not a personal access token.")
            : next(http));
}
