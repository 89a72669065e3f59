using Ams.Infrastructure;

namespace Ams.Features.TwoFactor;

/// <summary>What enabling, disabling and new recovery codes come to, and how each route shows it.</summary>
static class Settings
{
    public abstract record Outcome;
    public sealed record Done(IReadOnlyList<string>? RecoveryCodes = null) : Outcome;
    /// <param name="Enabled">Whether two-factor authentication is on, as the refusal leaves it.</param>
    public sealed record Invalid(string Message, bool Enabled) : Outcome;
    public sealed record Refused : Outcome;
    public sealed record LockedOut(TimeSpan RetryAfter) : Outcome;

    public const string Title = "Two-factor authentication";

    /// <summary>
    /// Every outcome but the API's success (each endpoint sends its own body for that). The form
    /// swaps the settings section for the state the user is in after it: <paramref name="enabledAfter"/>
    /// after a success, <paramref name="enabledBefore"/> after a wrong code or password or a lockout.
    /// </summary>
    public static Task ReplyAsync(HttpContext http, Outcome outcome, bool enabledBefore, bool enabledAfter)
    {
        if (http.IsApi())
            return outcome switch
            {
                LockedOut l => Problem.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many wrong codes", "Wait before trying again.", l.RetryAfter),
                Invalid i => Problem.WriteAsync(http, StatusCodes.Status400BadRequest, i.Message),
                // Enabling takes a code alone; the others take both, and do not say which was wrong.
                _ => Problem.WriteAsync(http, StatusCodes.Status401Unauthorized, enabledBefore ? "Invalid code or password" : "Invalid code"),
            };
        if (outcome is LockedOut wait) Problem.RetryAfter(http, wait.RetryAfter);
        var (status, section) = outcome switch
        {
            Done { RecoveryCodes: { } codes } => (200, Fragments.RecoveryCodes(codes)),
            Done => (200, Fragments.Settings(http, enabledAfter, [])),
            LockedOut => (429, Fragments.Settings(http, enabledBefore, ["Too many wrong codes. Wait and try again."])),
            Invalid i => (400, Fragments.Settings(http, i.Enabled, [i.Message])),
            _ => (401, Fragments.Settings(http, enabledBefore, [enabledBefore ? "That code or password did not work." : "That code did not work."])),
        };
        return Layout.SendAsync(http, Title, section, status);
    }

    /// <summary>A form that failed validation: the section as it was, with the messages.</summary>
    public static Task InvalidFormAsync(HttpContext http, string[] errors, bool enabledBefore) =>
        Layout.SendAsync(http, Title, Fragments.Settings(http, enabledBefore, errors), StatusCodes.Status422UnprocessableEntity);

    public static Task SectionAsync(HttpContext http, Html section) => Layout.SendAsync(http, Title, section);
}
