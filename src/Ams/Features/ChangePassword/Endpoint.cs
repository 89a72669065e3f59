using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.ChangePassword;

/// <summary>
/// A new password for the current one. A wrong current password counts as a failed sign-in for
/// the account (the login throttle's budget); success ends every other session and every
/// personal access token of the user at once, and the calling session stays. The JSON call and
/// the settings form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class Endpoint(MariaDb db, Passwords passwords, Login.Reauthentication reauthentication, SessionStore sessions, SecurityEvents events)
    : Endpoint<Request>
{
    abstract record Outcome;
    sealed record Changed : Outcome;
    sealed record Throttled(TimeSpan RetryAfter) : Outcome;
    sealed record WrongPassword : Outcome;
    sealed record Invalid(string Message) : Outcome;

    public override void Configure()
    {
        Post("/api/account/password", "/settings/password");
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "Change the password; every other session and token ends", b => b.Produces(StatusCodes.Status204NoContent), 400, 429,
            ApiDocs.PasswordCheckBusy);
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            await Layout.SendAsync(HttpContext, "Settings", Fragments.Form(HttpContext, errors), StatusCodes.Status422UnprocessableEntity);
            return;
        }
        var outcome = await ChangeAsync(HttpContext.Session(), req, ct);
        if (HttpContext.IsApi())
        {
            await (outcome switch
            {
                Changed => Send.NoContentAsync(ct),
                Throttled t => Login.Throttle.TooManyAsync(HttpContext, t.RetryAfter),
                Invalid i => InvalidAsync(i.Message),
                _ => Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Wrong current password"),
            });
            return;
        }
        if (outcome is Throttled wait) Problem.RetryAfter(HttpContext, wait.RetryAfter);
        var (status, form) = outcome switch
        {
            Changed => (200, Fragments.Form(HttpContext, [], changed: true)),
            Throttled => (429, Fragments.Form(HttpContext, ["Too many failed sign-ins. Wait and try again."])),
            Invalid i => (400, Fragments.Form(HttpContext, [i.Message])),
            _ => (401, Fragments.Form(HttpContext, ["The current password is wrong."])),
        };
        await Layout.SendAsync(HttpContext, "Settings", form, status);
    }

    Task InvalidAsync(string message)
    {
        AddError(r => r.NewPassword, message);
        ThrowIfAnyErrors();
        return Task.CompletedTask;
    }

    async Task<Outcome> ChangeAsync(Session session, Request req, CancellationToken ct)
    {
        var user = (await Users.FindByIdAsync(db, session.UserId, ct))!;
        switch (await reauthentication.CheckAsync(HttpContext, user, req.CurrentPassword, ct))
        {
            case Login.Reauthentication.Throttled t: return new Throttled(t.RetryAfter);
            case Login.Reauthentication.WrongPassword: return new WrongPassword();
        }
        if (string.Equals(req.NewPassword, user.Username, StringComparison.OrdinalIgnoreCase))
            return new Invalid("Password must not be the username.");
        if (!await Sql.ReplaceHashAsync(db, user.Id, user.PasswordHash, await passwords.HashAsync(req.NewPassword, ct), ct))
            return new WrongPassword();   // changed meanwhile by another request: the password given is no longer the current one
        await sessions.RevokeAllAsync(user.Id, exceptSessionId: session.Id, includeTokens: true);
        await events.RecordAsync(user.Id, SecurityEvents.PasswordChanged, HttpContext);
        return new Changed();
    }
}
