using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>
/// The account's security history (api.md "Account security"): one row in <c>security_events</c>
/// and one structured log line per event, with named properties and never a secret (no password,
/// code or token: only the kind, the user id, the address and the user agent).
/// </summary>
public sealed class SecurityEvents(MariaDb db, StackExchange.Redis.IConnectionMultiplexer redis, TimeProvider time, ILogger<SecurityEvents> logger)
{
    public const string Login = "login";
    public const string LoginFailed = "login.failed";
    public const string LoginThrottled = "login.throttled";
    public const string TwoFactorEnabled = "2fa.enabled";
    public const string TwoFactorDisabled = "2fa.disabled";
    public const string RecoveryCodeUsed = "2fa.recovery-code-used";
    public const string RecoveryCodesRegenerated = "2fa.recovery-codes-regenerated";
    public const string PasswordChanged = "password.changed";
    public const string SessionRevoked = "session.revoked";
    public const string TokenCreated = "token.created";
    public const string TokenRevoked = "token.revoked";
    // By an administrator (`Ams admin`): the account's owner learns of them from the history.
    public const string PasswordReset = "password.reset";
    public const string AccountDisabled = "account.disabled";
    public const string AccountEnabled = "account.enabled";

    public static readonly IReadOnlyList<string> Kinds =
    [
        Login, LoginFailed, LoginThrottled, TwoFactorEnabled, TwoFactorDisabled, RecoveryCodeUsed,
        RecoveryCodesRegenerated, PasswordChanged, SessionRevoked, TokenCreated, TokenRevoked,
        PasswordReset, AccountDisabled, AccountEnabled,
    ];

    /// <summary>What an administrator did to the account from the command line: no address, <see cref="AdminAgent"/> as the agent.</summary>
    public Task RecordAdminActionAsync(long userId, string kind) => RecordAsync(userId, kind, "", AdminAgent, null);

    const string AdminAgent = "Ams admin";

    /// <summary>
    /// Records an event for the user. A failure to record is logged, never thrown: the history
    /// must not turn a sign-in's 401 (or a revocation's 204) into a 503.
    /// </summary>
    public Task RecordAsync(long userId, string kind, HttpContext http) =>
        RecordAsync(userId, kind, ClientAddress.Of(http), ClientAddress.UserAgentOf(http), null);

    /// <summary>
    /// The same without making the caller wait: for sign-in failures, whose answer must take as
    /// long whether the account exists or not. With <paramref name="oncePer"/>, at most one such
    /// event per account and period is stored (a throttled attacker cannot flood the history).
    /// </summary>
    public void RecordInBackground(long userId, string kind, HttpContext http, TimeSpan? oncePer = null) =>
        _ = RecordAsync(userId, kind, ClientAddress.Of(http), ClientAddress.UserAgentOf(http), oncePer);

    async Task RecordAsync(long userId, string kind, string address, string userAgent, TimeSpan? oncePer)
    {
        try
        {
            if (oncePer is { } period
                && !await redis.GetDatabase().StringSetAsync($"{Redis.KeyPrefix}security-event-once:{kind}:{userId}", 1, period, StackExchange.Redis.When.NotExists))
                return;
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
        {
            // Without Redis every occurrence is recorded.
        }
        logger.LogInformation("Security event {SecurityEventKind} for user {UserId} from {Address} with user agent {UserAgent}",
            kind, userId, address, userAgent);
        try
        {
            await using var connection = await db.OpenConnectionAsync();
            await connection.ExecuteAsync("""
                INSERT INTO security_events (user_id, at, kind, address, user_agent)
                VALUES (@userId, @at, @kind, @address, @userAgent)
                """, new { userId, at = time.UtcNowMillis(), kind, address, userAgent }, commandTimeout: connection.CommandTimeout());
        }
        catch (Exception e) when (e is MySqlException or InvalidOperationException or TimeoutException)
        {
            logger.LogError("Could not store security event {SecurityEventKind} for user {UserId}: {Error}", kind, userId, e.Message);
        }
    }
}
