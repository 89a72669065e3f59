using System.Diagnostics;
using Ams.Tests.Messaging;
using Ams.Tests.Support;

namespace Ams.Tests.Account;

/// <summary>
/// Credentials made while a password change ends the account's others: each one the change
/// answered 204 to must be ended with them, whichever way the two interleave. Each round starts
/// the new credential at another point of the change, across the change's own duration.
/// </summary>
public sealed class RevocationRaceTests(Services services) : IClassFixture<Services>
{

    /// <summary>How long a password change takes here (two Argon2id runs and the revocations), to spread the rounds' starts over.</summary>
    static async Task<TimeSpan> ChangeTakesAsync(IAlbaHost app)
    {
        var name = Api.UniqueName("rw");
        await app.RegisterAsync(name);
        var caller = await app.LoginAsAsync(name, "caller");
        var took = Stopwatch.StartNew();
        await app.CallAsync("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = "a brand new passphrase" }, caller, 204);
        return took.Elapsed;
    }

    static TimeSpan StartOf(int round, int rounds, TimeSpan span) => span * (1.2 * round / rounds);

    /// <summary>
    /// Rounds of a password change with a credential made at another point of it (what
    /// <paramref name="prepare"/> returns, given the user's name: the call, and the status it has
    /// when it made one); the rounds whose credential still worked after both were answered.
    /// </summary>
    static async Task<List<string>> SurvivorsAsync(IAlbaHost app, int rounds, string prefix, Func<string, int, Task<Func<Task<IScenarioResult>>>> prepare, int made)
    {
        var span = await ChangeTakesAsync(app);
        var survivors = new List<string>();
        for (var round = 0; round < rounds; round++)
        {
            var name = Api.UniqueName(prefix);
            await app.RegisterAsync(name);
            var caller = await app.LoginAsAsync(name, "caller");
            var racing = await prepare(name, round);
            var change = app.CallAsync("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = $"a brand new passphrase {round}" }, caller, 204);
            await Task.Delay(StartOf(round, rounds, span));
            var result = await racing();
            await change;
            if (result.Status() != made) continue;
            var token = (await result.JsonAsync())["token"].Str();
            if ((await app.CallAsync("GET", "/api/me", null, token, null)).Status() != 401) survivors.Add($"round {round}");
        }
        return survivors;
    }

    [Fact]
    public async Task A_sign_in_with_the_old_password_racing_its_change_keeps_no_session()
    {
        // Argon2id at its real cost: the test's minimum makes a sign-in too short to fall inside the change.
        await using var app = await services.StartAppAsync(settings: Services.ProductionPasswords);
        var survivors = await SurvivorsAsync(app, 12, "rs", (name, round) => Task.FromResult<Func<Task<IScenarioResult>>>(() =>
            app.CallAsync("POST", "/api/login", new { username = name, password = Api.Password }, null, null, ip: $"192.0.2.{100 + round}")), 200);
        Assert.True(survivors.Count == 0, $"sessions signed in with the old password outlived its change: {string.Join(", ", survivors)}");
    }

    [Fact]
    public async Task A_token_made_by_another_session_racing_a_password_change_is_ended_with_it()
    {
        // The test's cheap Argon2id: the window between the sessions' end and the tokens' is a few
        // milliseconds, which short changes sweep finely.
        var app = await services.AppAsync();
        var survivors = await SurvivorsAsync(app, 24, "rt", async (name, _) =>
        {
            var other = await app.LoginAsAsync(name, "other");
            return () => app.CallAsync("POST", "/api/tokens", new { name = "racing", password = Api.Password }, other, null);
        }, 201);
        Assert.True(survivors.Count == 0, $"tokens made while the password changed outlived it: {string.Join(", ", survivors)}");
    }

    [Fact]
    public async Task An_event_stream_opening_while_its_session_ends_on_another_node_is_closed_and_hears_nothing_after()
    {
        var app = await services.AppAsync();
        await using var other = await services.StartAppAsync();
        var alice = await app.MemberAsync("rv");
        var bob = await app.MemberAsync("rv");
        var direct = (await app.DirectAsync(bob, alice)).Id();
        var survivors = new List<string>();
        for (var round = 0; round < 40; round++)
        {
            var token = await app.LoginAsync(alice.Name);
            // Warm the session on the stream's node, as a page load would before its stream.
            await app.CallAsync("GET", "/api/me", null, token, 200);
            var logout = Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromMilliseconds(round % 8 * 0.5));
                await other.CallAsync("POST", "/api/logout", null, token, 204);
            });
            await using var stream = await SseClient.OpenAsync(app, token);
            await logout;
            if (stream.Response.StatusCode != System.Net.HttpStatusCode.OK) continue;
            await app.SendAsync(bob, direct, $"after logout {round}");
            try
            {
                while (await stream.NextAsync(TimeSpan.FromSeconds(3)) is { } received)
                    if (received.Event == "message")
                    {
                        survivors.Add($"round {round} got a message");
                        break;
                    }
            }
            catch (OperationCanceledException)
            {
                survivors.Add($"round {round} stayed open");
            }
        }
        Assert.True(survivors.Count == 0, $"streams of an ended session: {string.Join(", ", survivors)}");
    }
}
