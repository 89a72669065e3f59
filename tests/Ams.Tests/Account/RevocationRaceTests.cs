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
    const int Rounds = 24;

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

    static TimeSpan StartOf(int round, TimeSpan span) => span * (1.2 * round / Rounds);

    [Fact]
    public async Task A_sign_in_with_the_old_password_racing_its_change_keeps_no_session()
    {
        var app = await services.AppAsync();
        var span = await ChangeTakesAsync(app);
        var survivors = new List<string>();
        for (var round = 0; round < Rounds; round++)
        {
            var name = Api.UniqueName("rs");
            await app.RegisterAsync(name);
            var caller = await app.LoginAsAsync(name, "caller");
            var ip = $"192.0.2.{100 + round}";
            var change = app.CallAsync("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = $"a brand new passphrase {round}" }, caller, 204);
            await Task.Delay(StartOf(round, span));
            var signIn = await app.CallAsync("POST", "/api/login", new { username = name, password = Api.Password }, null, null, ip: ip);
            await change;
            if (signIn.Status() != 200) continue;
            var token = (await signIn.JsonAsync())["token"].Str();
            if ((await app.CallAsync("GET", "/api/me", null, token, null)).Status() != 401) survivors.Add($"round {round}");
        }
        Assert.True(survivors.Count == 0, $"sessions signed in with the old password outlived its change: {string.Join(", ", survivors)}");
    }

    [Fact]
    public async Task A_token_made_by_another_session_racing_a_password_change_is_ended_with_it()
    {
        var app = await services.AppAsync();
        var span = await ChangeTakesAsync(app);
        var survivors = new List<string>();
        for (var round = 0; round < Rounds; round++)
        {
            var name = Api.UniqueName("rt");
            await app.RegisterAsync(name);
            var caller = await app.LoginAsAsync(name, "caller");
            var other = await app.LoginAsAsync(name, "other");
            var change = app.CallAsync("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = $"a brand new passphrase {round}" }, caller, 204);
            await Task.Delay(StartOf(round, span));
            var created = await app.CallAsync("POST", "/api/tokens", new { name = "racing" }, other, null);
            await change;
            if (created.Status() != 201) continue;
            var token = (await created.JsonAsync())["token"].Str();
            if ((await app.CallAsync("GET", "/api/me", null, token, null)).Status() != 401) survivors.Add($"round {round}");
        }
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
