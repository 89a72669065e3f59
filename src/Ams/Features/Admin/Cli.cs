using System.Globalization;
using Ams.Infrastructure;
using MySqlConnector;

namespace Ams.Features.Admin;

/// <summary>
/// <c>Ams admin …</c>: account administration from the same binary and the same configuration as
/// the server (api.md "Administration"). Exit code 0 on success; 1 with a message on stderr
/// otherwise. Passwords are read from stdin (one line), never from the command line.
/// </summary>
public static class Cli
{
    public const string Verb = "admin";

    public static bool IsAdmin(string[] args) => args is [Verb, ..];

    public const string Usage = """
        usage: Ams admin invite [--uses N]
               Ams admin create-user USERNAME [--display-name NAME]   (password on stdin)
               Ams admin reset-password USERNAME                      (password on stdin)
               Ams admin disable USERNAME
               Ams admin enable USERNAME
               Ams admin list-users
        """;

    sealed class Failure(string message) : Exception(message);

    public static async Task<int> RunAsync(IServiceProvider services, string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var db = services.GetRequiredService<MariaDb>();
            var time = services.GetRequiredService<TimeProvider>();
            switch (args)
            {
                case ["invite", .. var rest]:
                    var uses = Option(rest, "--uses") is { } text
                        ? int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 1_000_000 ? n
                            : throw new Failure("--uses must be a whole number from 1 to 1000000.")
                        : 1;
                    Expect(rest, 0, "--uses");
                    var code = await Register.Invites.CreateAsync(db, uses, time.UtcNowMillis());
                    stdout.WriteLine($"invite valid for {uses} registration{(uses == 1 ? "" : "s")} (shown once):");
                    stdout.WriteLine(code);
                    // The code is made either way (the mode may be about to change), but an operator
                    // handing it out should know it does nothing yet.
                    switch (services.GetRequiredService<Register.RegistrationLimits>().Mode)
                    {
                        case Register.RegistrationMode.Closed:
                            stderr.WriteLine("warning: Registration__Mode is closed here, so nobody can register, with this code or without, until it is invite.");
                            break;
                        case Register.RegistrationMode.Open:
                            stderr.WriteLine("note: Registration__Mode is open here, so anyone registers without a code; codes are asked for only where it is invite.");
                            break;
                    }
                    return 0;

                case ["create-user", var username, .. var rest] when !username.StartsWith('-'):
                {
                    Expect(rest, 0, "--display-name");
                    var request = new Register.Request
                    {
                        Username = username, Password = ReadPassword(stdin), DisplayName = Option(rest, "--display-name"),
                    };
                    Validate(request);
                    var name = request.Username.ToLowerInvariant();
                    var passwords = services.GetRequiredService<Passwords>();
                    var id = await Register.Sql.InsertUserAsync(db, name, request.DisplayName?.Trim() ?? name, await passwords.HashAsync(request.Password), time.UtcNowMillis(), default)
                        ?? throw new Failure($"The username '{name}' is already registered.");
                    stdout.WriteLine($"created user '{name}' (id {id.ToString(CultureInfo.InvariantCulture)})");
                    return 0;
                }

                case ["reset-password", var username, .. var rest] when !username.StartsWith('-'):
                {
                    Expect(rest, 0);
                    var user = await FindAsync(db, username);
                    var password = ReadPassword(stdin);
                    // The register rules (length, common list, not the username) apply to every new password.
                    Validate(new Register.Request { Username = user.Username, Password = password });
                    var passwords = services.GetRequiredService<Passwords>();
                    await Sql.SetPasswordHashAsync(db, user.Id, await passwords.HashAsync(password));
                    await EndSessionsAsync(services, user.Username, user.Id, $"The password of '{user.Username}' is reset");
                    await services.GetRequiredService<SecurityEvents>().RecordAdminActionAsync(user.Id, SecurityEvents.PasswordReset);
                    stdout.WriteLine($"password of '{user.Username}' reset; every session and access token of it has ended");
                    return 0;
                }

                case ["disable", var username, .. var rest] when !username.StartsWith('-'):
                {
                    Expect(rest, 0);
                    var user = await FindAsync(db, username);
                    await Sql.SetDisabledAsync(db, user.Id, time.UtcNowMillis());
                    // After the flag: a sign-in racing with this finds the account disabled or loses its session here.
                    await EndSessionsAsync(services, user.Username, user.Id, $"'{user.Username}' is disabled");
                    await services.GetRequiredService<SecurityEvents>().RecordAdminActionAsync(user.Id, SecurityEvents.AccountDisabled);
                    stdout.WriteLine($"disabled '{user.Username}'; every session and access token of it has ended");
                    return 0;
                }

                case ["enable", var username, .. var rest] when !username.StartsWith('-'):
                {
                    Expect(rest, 0);
                    var user = await FindAsync(db, username);
                    await Sql.SetDisabledAsync(db, user.Id, null);
                    await services.GetRequiredService<SecurityEvents>().RecordAdminActionAsync(user.Id, SecurityEvents.AccountEnabled);
                    stdout.WriteLine($"enabled '{user.Username}'");
                    return 0;
                }

                case ["list-users", .. var rest]:
                    Expect(rest, 0);
                    stdout.WriteLine("username\tdisplay name\tcreated\t2fa\tstatus");
                    foreach (var user in await Sql.ListUsersAsync(db))
                        stdout.WriteLine(string.Join('\t', user.Username, Printable(user.DisplayName),
                            DateTime.SpecifyKind(user.CreatedAt, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                            user.TwoFactorEnabled ? "on" : "off", user.DisabledAt is null ? "enabled" : "disabled"));
                    return 0;

                default:
                    throw new Failure(args.Length == 0 ? "no admin command given." : $"unknown admin command or missing argument: '{string.Join(' ', args)}'.");
            }
        }
        catch (Failure e)
        {
            stderr.WriteLine($"Ams admin: {e.Message}");
            if (e.Message.StartsWith("no admin command", StringComparison.Ordinal) || e.Message.StartsWith("unknown admin command", StringComparison.Ordinal))
                stderr.WriteLine(Usage);
            return 1;
        }
    }

    /// <summary>
    /// Ends every session and access token of the user, in Redis, before the command says so: a
    /// Redis that does not answer is asked again for up to half a minute (this process keeps no
    /// revocation for later, as a server does), then the command fails saying what is done and
    /// what is not. The account change stays: repeating the command is safe and finishes it.
    /// </summary>
    static async Task EndSessionsAsync(IServiceProvider services, string username, long userId, string done)
    {
        var sessions = services.GetRequiredService<SessionStore>();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                await sessions.RevokeAllAsync(userId, includeTokens: true);
                if (!sessions.RevocationsPending) return;
            }
            catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException) { }
            if (System.Diagnostics.Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(30))
                throw new Failure($"{done}, but Redis does not answer, so the sessions and access tokens of '{username}' have not ended yet. " +
                                  "Run the command again once Redis answers; repeating it is safe.");
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>The value after <paramref name="name"/>, or null when the option is absent.</summary>
    static string? Option(string[] args, string name)
    {
        var at = Array.IndexOf(args, name);
        if (at < 0) return null;
        if (at + 1 >= args.Length) throw new Failure($"{name} needs a value.");
        return args[at + 1];
    }

    /// <summary>Refuses anything but the named options (each with its value) after the positional arguments.</summary>
    static void Expect(string[] rest, int positional, params string[] options)
    {
        for (var i = positional; i < rest.Length; i++)
        {
            if (!options.Contains(rest[i])) throw new Failure($"unexpected argument '{rest[i]}'.");
            i++;   // its value (a missing one is reported by Option)
        }
    }

    static string ReadPassword(TextReader stdin)
    {
        var line = stdin.ReadLine();
        if (string.IsNullOrEmpty(line)) throw new Failure("no password on stdin (give it as one line, e.g. from a file or a pipe).");
        return line.TrimEnd('\r');
    }

    static void Validate(Register.Request request)
    {
        var result = new Register.Validator().Validate(request);
        if (!result.IsValid) throw new Failure(string.Join(" ", result.Errors.Select(e => e.ErrorMessage).Distinct()));
    }

    static async Task<UserRow> FindAsync(MariaDb db, string username) =>
        await Sql.FindUserAsync(db, username.ToLowerInvariant()) ?? throw new Failure($"no user '{username.ToLowerInvariant()}'.");

    /// <summary>A display name on one terminal line: control characters (tabs included) shown as spaces.</summary>
    static string Printable(string text) => new(text.Select(c => char.IsControl(c) ? ' ' : c).ToArray());
}
