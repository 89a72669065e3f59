using Ams.Infrastructure;
using MySqlConnector;

namespace Ams.Features.Login;

/// <summary>The password step shared by the API and the browser form.</summary>
static class SignIn
{
    public abstract record Outcome;
    public sealed record Throttled(TimeSpan RetryAfter) : Outcome;
    public sealed record Rejected : Outcome;
    public sealed record Succeeded(string Token, Session Session, UserRow User) : Outcome;
    public sealed record NeedsSecondFactor(string Challenge, DateTimeOffset ExpiresAt) : Outcome;

    public static async Task<Outcome> AttemptAsync(HttpContext http, Request req, MySqlDataSource db, Passwords passwords,
        Throttle throttle, SessionStore sessions, Challenges challenges, CancellationToken ct)
    {
        var username = req.Username.ToLowerInvariant();
        var address = ClientAddress.BucketOf(http);
        if (await throttle.TryAttemptAsync(username, address) is { } wait) return new Throttled(wait);

        var user = await Sql.FindUserAsync(db, username, ct);
        // A missing user is verified against a decoy hash, so both failures cost the same.
        if (!passwords.Verify(user?.PasswordHash, req.Password) || user is null) return new Rejected();

        await throttle.ForgiveAsync(username, address);
        if (passwords.NeedsRehash(user.PasswordHash))
            await Sql.UpdateHashAsync(db, user.Id, user.PasswordHash, passwords.Hash(req.Password), ct);
        if (user.TwoFactorEnabled)
        {
            var (challenge, expiresAt) = await challenges.CreateAsync(user.Id);
            return new NeedsSecondFactor(challenge, expiresAt);
        }
        var (token, session) = await sessions.CreateAsync(user.Id);
        return new Succeeded(token, session, user);
    }
}
