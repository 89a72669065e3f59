using Ams.Infrastructure;

namespace Ams.Features.Login;

/// <summary>
/// The password asked again inside a session, before what a stolen session alone must not do: a
/// password change, 2FA enrolment, a personal access token (which outlives every session). A guess
/// here costs what a guess at sign-in costs, and the owner's security history shows it.
/// </summary>
public sealed class Reauthentication(Throttle throttle, Passwords passwords, SecurityEvents events)
{
    public abstract record Outcome;
    public sealed record Passed : Outcome;
    public sealed record Throttled(TimeSpan RetryAfter) : Outcome;
    public sealed record WrongPassword : Outcome;

    public async Task<Outcome> CheckAsync(HttpContext http, UserRow user, string password, CancellationToken ct)
    {
        var account = Throttle.AccountOf(user, user.Username);
        var address = ClientAddress.BucketOf(http);
        if (await throttle.TryAttemptAsync(http, account, address) is { } wait)
        {
            events.RecordInBackground(user.Id, SecurityEvents.LoginThrottled, http, oncePer: wait);
            return new Throttled(wait);
        }
        if (!await throttle.CheckAsync(http, () => passwords.VerifyAsync(user.PasswordHash, password, ct)))
        {
            await events.RecordAsync(user.Id, SecurityEvents.LoginFailed, http);
            return new WrongPassword();
        }
        return new Passed();
    }
}
