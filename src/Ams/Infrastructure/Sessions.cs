using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using StackExchange.Redis;

namespace Ams.Infrastructure;

public sealed class SessionLifetime
{
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromHours(12);
    public TimeSpan AbsoluteLifetime { get; set; } = TimeSpan.FromDays(7);
    /// <summary>While Redis is unreachable, a session this node saw valid this recently still works.</summary>
    public TimeSpan OutageGrace { get; set; } = TimeSpan.FromMinutes(5);
}

public sealed record Session(string Id, long UserId, DateTimeOffset ExpiresAt);

/// <summary>
/// Sessions live in Redis, shared by every node, so a logout is seen by all of them at once.
/// The client holds a 256-bit random token; Redis holds only its SHA-256, so a Redis dump
/// or a MONITOR session yields no usable tokens.
/// </summary>
public sealed class SessionStore(IConnectionMultiplexer redis, TimeProvider time, SessionLifetime options)
{
    /// <summary>Where revoked session ids are announced: every node drops its copy and closes their streams.</summary>
    public static readonly RedisChannel RevokedChannel = RedisChannel.Literal(Redis.KeyPrefix + "sessions-revoked");

    const string TokenPrefix = "ams_";

    // Reads the session and slides its idle expiry in one round trip, never past the
    // absolute lifetime stored with it.
    const string FindAndSlide = """
        local v = redis.call('GET', KEYS[1])
        if not v then return false end
        local sep = string.find(v, '|', 1, true)
        local expires = tonumber(string.sub(v, sep + 1))
        local ttl = math.min(tonumber(ARGV[1]), expires - tonumber(ARGV[2]))
        if ttl <= 0 then
            redis.call('DEL', KEYS[1])
            return false
        end
        redis.call('PEXPIRE', KEYS[1], ttl)
        return v
        """;

    IDatabase Db => redis.GetDatabase();

    // Sessions this node has recently confirmed in Redis, by id: the fallback during a Redis
    // outage (when nobody can log out either), so that sending keeps working. Revocations reach
    // every node's copy through the RevokedChannel subscription.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, (Session Session, DateTimeOffset SeenAt)> recent = new();

    public async Task<(string Token, Session Session)> CreateAsync(long userId)
    {
        var token = TokenPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var id = IdOf(token);
        var now = time.GetUtcNow();
        var expires = now + options.AbsoluteLifetime;
        var ttl = options.IdleTimeout < options.AbsoluteLifetime ? options.IdleTimeout : options.AbsoluteLifetime;
        var value = $"{userId.ToString(CultureInfo.InvariantCulture)}|{expires.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}";
        var batch = Db.CreateBatch();
        var set = batch.StringSetAsync(SessionKey(id), value, ttl);
        var index = batch.SetAddAsync(UserKey(userId), id);
        var indexTtl = batch.KeyExpireAsync(UserKey(userId), options.AbsoluteLifetime);
        batch.Execute();
        await Task.WhenAll(set, index, indexTtl);
        return (token, new Session(id, userId, expires));
    }

    public async Task<Session?> FindAsync(string token)
    {
        if (!token.StartsWith(TokenPrefix, StringComparison.Ordinal) || token.Length > 64) return null;
        var id = IdOf(token);
        var now = time.GetUtcNow();
        RedisResult result;
        try
        {
            result = await Db.ScriptEvaluateAsync(FindAndSlide,
                [SessionKey(id)],
                [(long)options.IdleTimeout.TotalMilliseconds, now.ToUnixTimeMilliseconds()]);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            if (recent.TryGetValue(id, out var seen) && now - seen.SeenAt <= options.OutageGrace && seen.Session.ExpiresAt > now)
                return seen.Session;
            throw;
        }
        if (result.IsNull)
        {
            recent.TryRemove(id, out _);
            return null;
        }
        var value = (string)result!;
        var sep = value.IndexOf('|');
        var session = new Session(
            id,
            long.Parse(value.AsSpan(0, sep), CultureInfo.InvariantCulture),
            DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(value.AsSpan(sep + 1), CultureInfo.InvariantCulture)));
        if (recent.Count > 100_000) recent.Clear();
        recent[id] = (session, now);
        return session;
    }

    /// <summary>Drops a revoked session from this node's outage fallback.</summary>
    public void Forget(string sessionId) => recent.TryRemove(sessionId, out _);

    public async Task RevokeAsync(Session session)
    {
        var batch = Db.CreateBatch();
        var del = batch.KeyDeleteAsync(SessionKey(session.Id));
        var unindex = batch.SetRemoveAsync(UserKey(session.UserId), session.Id);
        batch.Execute();
        await Task.WhenAll(del, unindex);
        Forget(session.Id);
        await AnnounceAsync([session.Id]);
    }

    /// <summary>Whether the session still exists; true while Redis cannot say (an outage is no logout).</summary>
    public async Task<bool> ExistsAsync(string sessionId)
    {
        try
        {
            return await Db.KeyExistsAsync(SessionKey(sessionId));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return true;
        }
    }

    // Open event streams of these sessions close on every node (EventHub listens).
    Task AnnounceAsync(IEnumerable<string> sessionIds) =>
        Task.WhenAll(sessionIds.Select(id => redis.GetSubscriber().PublishAsync(RevokedChannel, id)));

    /// <summary>Ends every session of the user on every node, optionally sparing one.</summary>
    public async Task RevokeAllAsync(long userId, string? exceptSessionId = null)
    {
        var ids = await Db.SetMembersAsync(UserKey(userId));
        var doomed = ids.Select(v => (string)v!).Where(id => id != exceptSessionId).ToArray();
        if (doomed.Length == 0) return;
        await Db.KeyDeleteAsync(doomed.Select(id => (RedisKey)SessionKey(id)).ToArray());
        await Db.SetRemoveAsync(UserKey(userId), doomed.Select(id => (RedisValue)id).ToArray());
        await AnnounceAsync(doomed);
    }

    static string IdOf(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    static string SessionKey(string id) => $"{Redis.KeyPrefix}session:{id}";
    static string UserKey(long userId) => $"{Redis.KeyPrefix}user-sessions:{userId}";
}
