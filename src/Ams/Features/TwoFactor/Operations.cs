using Ams.Infrastructure;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>Enable, disable and regenerate, shared by the API endpoints and the settings page.</summary>
public sealed class Operations(MySqlDataSource db, Totp totp, Passwords passwords, SessionStore sessions)
{
    public abstract record Outcome;
    public sealed record Done(IReadOnlyList<string>? RecoveryCodes = null) : Outcome;
    public sealed record Invalid(string Message) : Outcome;
    public sealed record Refused : Outcome;
    public sealed record LockedOut(TimeSpan RetryAfter) : Outcome;

    /// <summary>Turns 2FA on with a code from the pending secret; other sessions end.</summary>
    public async Task<Outcome> EnableAsync(Session session, string code)
    {
        var user = (await Users.FindByIdAsync(db, session.UserId, default))!;
        if (user.TwoFactorEnabled) return new Invalid("Two-factor authentication is already on.");
        await using var connection = await db.OpenConnectionAsync();
        if (await totp.SecretAsync(connection, user.Id) is not { } secret) return new Invalid("Start with the setup step.");
        if (await totp.LockedForAsync(user.Id) is { } wait) return new LockedOut(wait);
        if (!await totp.VerifyTotpAsync(user.Id, secret, code))
        {
            await totp.RecordFailureAsync(user.Id, null);
            return new Refused();
        }
        await totp.ResetAsync(user.Id);
        var (codes, hashes) = totp.NewRecoveryCodes(user.Id);
        await Sql.EnableAsync(connection, user.Id, hashes);
        await sessions.RevokeAllAsync(user.Id, exceptSessionId: session.Id);
        return new Done(codes);
    }

    /// <summary>Turns 2FA off with the password and a current or recovery code; other sessions end.</summary>
    public async Task<Outcome> DisableAsync(Session session, string password, string code)
    {
        var user = (await Users.FindByIdAsync(db, session.UserId, default))!;
        if (!user.TwoFactorEnabled) return new Invalid("Two-factor authentication is not on.");
        if (await totp.LockedForAsync(user.Id) is { } wait) return new LockedOut(wait);
        await using var connection = await db.OpenConnectionAsync();
        var secret = await totp.SecretAsync(connection, user.Id);
        if (!passwords.Verify(user.PasswordHash, password) || secret is null || !await totp.VerifySecondFactorAsync(connection, user.Id, secret, code))
        {
            await totp.RecordFailureAsync(user.Id, null);
            return new Refused();
        }
        await totp.ResetAsync(user.Id);
        await Sql.DisableAsync(connection, user.Id);
        await sessions.RevokeAllAsync(user.Id, exceptSessionId: session.Id);
        return new Done();
    }

    /// <summary>New recovery codes for the password and a current TOTP code; the old ones die.</summary>
    public async Task<Outcome> RegenerateAsync(Session session, string password, string code)
    {
        var user = (await Users.FindByIdAsync(db, session.UserId, default))!;
        if (await totp.LockedForAsync(user.Id) is { } wait) return new LockedOut(wait);
        await using var connection = await db.OpenConnectionAsync();
        var secret = user.TwoFactorEnabled ? await totp.SecretAsync(connection, user.Id) : null;
        if (secret is null || !passwords.Verify(user.PasswordHash, password) || !await totp.VerifyTotpAsync(user.Id, secret, code))
        {
            await totp.RecordFailureAsync(user.Id, null);
            return new Refused();
        }
        await totp.ResetAsync(user.Id);
        var (codes, hashes) = totp.NewRecoveryCodes(user.Id);
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await Sql.ReplaceCodesAsync(connection, transaction, user.Id, hashes);
            await transaction.CommitAsync();
        }
        return new Done(codes);
    }

    /// <summary>The API's answer for an outcome that is not success.</summary>
    public static Task WriteFailureAsync(HttpContext http, Outcome outcome) => outcome switch
    {
        LockedOut l => Problem.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many wrong codes", "Wait before trying again.", l.RetryAfter),
        Invalid i => Problem.WriteAsync(http, StatusCodes.Status400BadRequest, i.Message),
        _ => Problem.WriteAsync(http, StatusCodes.Status401Unauthorized, "Invalid code or password"),
    };
}
