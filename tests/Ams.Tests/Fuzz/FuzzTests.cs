using Ams.Infrastructure;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using CsCheck;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MySqlConnector;
using Xunit.Abstractions;

namespace Ams.Tests.Fuzz;

/// <summary>
/// Generated malformed input against every route the app registers (read from its endpoint
/// registry, so a new route is fuzzed without anyone adding it here). The properties: never a
/// 5xx, never a stack trace, SQL or .NET type name in a response or an exception in the log,
/// problem details from every failing API call, and nothing already stored changed.
/// CI runs a fixed seed; <c>just fuzz</c> runs longer with a random one (AMS_FUZZ_SEED, AMS_FUZZ_ITER).
/// </summary>
public sealed partial class FuzzTests(Services services, ITestOutputHelper output) : IClassFixture<Services>
{
    const string CiSeed = "0000000000001";
    const int CiIterations = 1_500;

    static readonly string[] Leaks =
    [
        "Exception", "   at ", " at Ams.", "StackExchange", "MySqlConnector", "MySql", "Dapper", "FastEndpoints.", "System.",
        "Microsoft.", "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "JSON_TABLE", "syntax to use near", "Ams.Features", "Ams.Infrastructure",
    ];

    sealed record Session(string Token, string Csrf);

    [Fact]
    public async Task No_generated_request_reaches_a_5xx_leaks_internals_or_changes_what_is_stored()
    {
        var seed = Environment.GetEnvironmentVariable("AMS_FUZZ_SEED") is { Length: > 0 } s ? s : CiSeed;
        var iterations = int.TryParse(Environment.GetEnvironmentVariable("AMS_FUZZ_ITER"), out var n) ? n : CiIterations;
        // A run replays exactly from its seed (one thread, one request at a time), so a random run picks one to print.
        if (seed == "random") seed = new string(Random.Shared.GetItems("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".ToCharArray(), 12));
        output.WriteLine($"fuzz seed {seed}, {iterations} requests (replay: just fuzz {iterations} {seed})");

        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: x => x.AddSingleton<ILoggerProvider>(logs));
        var alice = await app.MemberAsync("fa");
        var bob = await app.MemberAsync("fb");
        var carol = await app.MemberAsync("fc");
        // Bob owns the group Alice fuzzes from: a fuzzed rename of it is a 403 (the snapshot keeps its title).
        var own = await app.GroupAsync(bob, "fuzzed", alice);
        var others = await app.GroupAsync(bob, "not alice's", carol);
        // Carol's messages come first: the small ids the fuzzer tries ("1", the conversation ids) are
        // messages Alice cannot see, so a fuzzed DELETE /api/messages/{id} cannot destroy what the
        // snapshot below must find unchanged.
        await app.SendAsync(carol, others.Id(), "private");
        await app.SendAsync(carol, others.Id(), "private too");
        var stored = new List<string>();
        for (var i = 0; i < 5; i++) stored.Add((await app.SendAsync(i % 2 == 0 ? alice : bob, own.Id(), $"kept {i} <b>&</b>")).Id());
        var cutoff = await CutoffAsync(app);
        var before = await SnapshotAsync(app, cutoff);

        var session = await CookieSessionAsync(app, alice);
        var routes = Routes(app);
        Assert.True(routes.Count >= 30, $"only {routes.Count} routes found in the endpoint registry");
        var gen = RequestGen(routes, own.Id(), others.Id());

        var failures = new List<(string Kind, FuzzRequest Request, string Detail)>();
        var sent = 0;
        var statuses = new SortedDictionary<int, int>();
        using var client = app.Server.CreateClient();
        await gen.SampleAsync(async request =>
        {
            sent++;
            var (status, body, contentType) = await SendAsync(client, request, alice.Token, session);
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            if (status >= 500) failures.Add(($"{status}", request, Trim(body)));
            foreach (var leak in Leaks.Where(l => body.Contains(l, StringComparison.Ordinal)))
                failures.Add(($"leaks '{leak}'", request, Trim(body)));
            if (request.Path.StartsWith("/api/", StringComparison.Ordinal) && status >= 400 && !contentType.StartsWith("application/problem+json"))
                failures.Add(($"{status} without problem details ({contentType})", request, Trim(body)));
            // A fuzzed logout may have ended the sessions; the next requests need live ones to reach the handlers.
            if (request.Route.Contains("logout", StringComparison.Ordinal))
            {
                alice = alice with { Token = await app.LoginAsync(alice.Name) };
                session = await CookieSessionAsync(app, alice);
            }
        }, seed: seed, iter: iterations, threads: 1, writeLine: output.WriteLine);

        var logged = logs.Lines.Where(l => l.Contains("   at ", StringComparison.Ordinal) || l.StartsWith("Error", StringComparison.Ordinal)
            || l.StartsWith("Critical", StringComparison.Ordinal)).ToList();
        output.WriteLine($"seed {seed}: {sent} requests over {routes.Count} routes; statuses {string.Join(", ", statuses.Select(p => $"{p.Key}×{p.Value}"))}");

        var distinct = failures.GroupBy(f => (f.Kind, f.Request.Method, f.Request.Route)).ToList();
        Assert.True(distinct.Count == 0 && logged.Count == 0,
            $"seed {seed}: {distinct.Count} distinct failures in {failures.Count} of {sent} requests, {logged.Count} error log lines\n"
            + string.Join("\n", distinct.Take(25).Select(g => $"- {g.Key.Kind} on {g.Key.Method} {g.Key.Route} ({g.Count()}×), e.g. {g.First().Request}\n  → {g.First().Detail}"))
            + string.Join("\n", logged.Take(5).Select(l => "log: " + Trim(l))));

        Assert.Equal(before, await SnapshotAsync(app, cutoff));
        var history = await app.HistoryAsync(bob, own.Id());
        Assert.Equal(stored, history.Take(stored.Count).Select(m => m.Id()));
        Assert.All(history.Take(stored.Count), m => Assert.StartsWith("kept ", m["body"].Str()));
    }

    static string Trim(string text) => text.Length > 400 ? text[..400] + "…" : text;

    /// <summary>Every route with its methods, from the app's own endpoint registry.</summary>
    static List<(string Method, string Pattern)> Routes(IAlbaHost app) =>
        app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (m, "/" + e.RoutePattern.RawText!.TrimStart('/'))))
            .Distinct().OrderBy(r => r.Item2).ThenBy(r => r.m).ToList();

    [GeneratedRegex(@"\{([^}:]+)(:[^}]*)?\}")]
    private static partial Regex RouteParameter();

    static Gen<FuzzRequest> RequestGen(List<(string Method, string Pattern)> routes, string ownId, string othersId) =>
        from route in Gen.OneOf(routes.ToArray())
        from values in Inputs.RouteValue(ownId, othersId).Array[3]
        from query in Inputs.Query
        from auth in Gen.Enum<Auth>()
        from contentType in Inputs.ContentType
        from body in BodyGen(contentType)
        from accept in Inputs.Accept
        from headers in Inputs.ExtraHeaders
        select new FuzzRequest(route.Method, route.Pattern, Fill(route.Pattern, values), query, auth, contentType, body, accept, headers);

    static string Fill(string pattern, string[] values)
    {
        var i = 0;
        return RouteParameter().Replace(pattern, _ => values[i++ % values.Length]);
    }

    static Gen<byte[]?> BodyGen(string? contentType) => contentType switch
    {
        null => Gen.Frequency((3, Gen.Const((byte[]?)null)), (1, Inputs.JsonText.Select(t => (byte[]?)Encoding.UTF8.GetBytes(t)))),
        _ when contentType.StartsWith("application/json") => Gen.Frequency(
            (8, Inputs.JsonText.Select(t => (byte[]?)Encoding.UTF8.GetBytes(t))),
            (1, Gen.Select(Inputs.JsonText, Inputs.BadUtf8).Select((t, bad) => (byte[]?)[.. Encoding.UTF8.GetBytes("{\"body\":\""), .. bad, .. Encoding.UTF8.GetBytes("\"}")]))),
        _ when contentType.StartsWith("application/x-www-form-urlencoded") => Inputs.FormText.Select(t => (byte[]?)Encoding.UTF8.GetBytes(t)),
        _ when contentType.StartsWith("multipart/form-data") => Gen.Select(Inputs.FieldName, Inputs.HostileString).Array[0, 4].Select(fields =>
            (byte[]?)Encoding.UTF8.GetBytes(string.Concat(fields.Select(f =>
                $"--fuzzb\r\nContent-Disposition: form-data; name=\"{f.Item1}\"\r\n\r\n{f.Item2}\r\n")) + "--fuzzb--\r\n")),
        _ => Gen.Frequency((2, Inputs.HostileString.Select(t => (byte[]?)Encoding.UTF8.GetBytes(t))), (1, Inputs.BadUtf8.Select(b => (byte[]?)b))),
    };

    static async Task<(int Status, string Body, string ContentType)> SendAsync(HttpClient client, FuzzRequest r, string token, Session session)
    {
        using var request = new HttpRequestMessage(new HttpMethod(r.Method), r.Path + r.Query);
        if (r.Body is not null || r.ContentType is not null)
        {
            request.Content = new ByteArrayContent(r.Body ?? []);
            request.Content.Headers.ContentType = null;
            if (r.ContentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", r.ContentType);
        }
        var cookies = new List<string>();
        switch (r.Auth)
        {
            case Auth.Bearer: request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token); break;
            case Auth.JunkBearer: request.Headers.TryAddWithoutValidation("Authorization", "Bearer ams_\0junk"); break;
            case Auth.Cookie:
                cookies.Add($"ams_session={session.Token}");
                request.Headers.TryAddWithoutValidation("X-CSRF-Token", session.Csrf);
                break;
            case Auth.CookieWithoutToken: cookies.Add($"ams_session={session.Token}"); break;
            case Auth.JunkCookie: cookies.Add("ams_session=%00%ff; ams_csrf=;;"); break;
            case Auth.PreSessionOnly: cookies.Add("ams_csrf=pre-session-binding"); break;
            case Auth.BearerAndCookie:
                request.Headers.TryAddWithoutValidation("Authorization", ["Bearer " + token, "Bearer second"]);
                cookies.Add($"ams_session={session.Token}");
                break;
        }
        if (cookies.Count > 0) request.Headers.TryAddWithoutValidation("Cookie", string.Join("; ", cookies));
        if (r.Accept is not null) request.Headers.TryAddWithoutValidation("Accept", r.Accept);
        foreach (var (name, value) in r.Headers) request.Headers.TryAddWithoutValidation(name, value);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        var contentType = response.Content.Headers.ContentType?.ToString() ?? "";
        // An open event stream never ends; its status and headers are the answer.
        if (contentType.StartsWith("text/event-stream")) return ((int)response.StatusCode, "", contentType);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(timeout.Token), contentType);
    }

    /// <summary>A browser session: the session cookie and the anti-forgery token its pages carry.</summary>
    static async Task<Session> CookieSessionAsync(IAlbaHost app, Member member)
    {
        var page = await app.Scenario(s =>
        {
            s.Get.Url("/c/new");
            s.WithRequestHeader("Cookie", $"ams_session={member.Token}");
        });
        var csrf = Regex.Match(await page.ReadAsTextAsync(), "name=\"_csrf\" value=\"([^\"]+)\"").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(csrf), "no anti-forgery token on /c/new");
        return new Session(member.Token, csrf);
    }

    sealed record Cutoff(long User, long Conversation, long Message, DateTime At);

    static async Task<Cutoff> CutoffAsync(IAlbaHost app)
    {
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        await using var command = new MySqlCommand(
            "SELECT (SELECT MAX(id) FROM users), (SELECT MAX(id) FROM conversations), (SELECT MAX(id) FROM messages), UTC_TIMESTAMP(3)", connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        var cutoff = new Cutoff(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetDateTime(3));
        await Task.Delay(10);   // rows written from now on are younger than the cutoff
        return cutoff;
    }

    /// <summary>Every row that existed before the run, as text: what fuzzing must not change (it may add rows).</summary>
    static async Task<string> SnapshotAsync(IAlbaHost app, Cutoff cutoff)
    {
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        var text = new StringBuilder();
        foreach (var query in new[]
        {
            "SELECT CONCAT_WS('|', id, username, display_name, password_hash, two_factor_enabled, created_at) FROM users WHERE id <= @user ORDER BY id",
            "SELECT CONCAT_WS('|', id, kind, COALESCE(title, ''), COALESCE(direct_key, ''), created_at) FROM conversations WHERE id <= @conversation ORDER BY id",
            "SELECT CONCAT_WS('|', conversation_id, user_id, joined_at, joined_after_message_id) FROM conversation_members WHERE joined_at <= @at ORDER BY conversation_id, user_id",
            "SELECT CONCAT_WS('|', id, conversation_id, sender_id, HEX(body), entropy, sent_at) FROM messages WHERE id <= @message ORDER BY id",
            "SELECT CONCAT_WS('|', HEX(id), kek_id, HEX(wrapped), entropy, created_at) FROM data_keys WHERE created_at <= @at ORDER BY id",
        })
        {
            await using var command = new MySqlCommand(query, connection);
            command.Parameters.AddWithValue("@user", cutoff.User);
            command.Parameters.AddWithValue("@conversation", cutoff.Conversation);
            command.Parameters.AddWithValue("@message", cutoff.Message);
            command.Parameters.AddWithValue("@at", cutoff.At);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) text.Append(reader.GetString(0)).Append('\n');
        }
        return text.ToString();
    }
}
