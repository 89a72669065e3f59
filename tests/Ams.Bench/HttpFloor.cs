using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Bench;

/// <summary>
/// The delivery floor with HTTP and SSE in the path: the floor's durable INSERT and PUBLISH behind a
/// bare ASP.NET Core endpoint ("node 1": POST, 201 after both), received by "node 2", whose event
/// stream a Redis subscription feeds. Both are Kestrel in this process, with nothing else: no
/// authentication, throttle, encryption, event numbers or transaction. So it is what any design
/// that answers a send over HTTP after a durable write and delivers it over SSE through Redis pays
/// on this machine, at the delivery scenario's rates and with its clients.
/// </summary>
static class HttpFloorScenario
{
    const int Pairs = 50;   // as many conversations as the AMS delivery scenario has

    public static async Task<Result> RunAsync(string mariaDb, string redisConfiguration, Settings settings, int rate)
    {
        await Scenarios.QuiesceAsync(mariaDb);
        await Scenarios.CreateFloorTableAsync(mariaDb);
        await using var publisher = await ConnectionMultiplexer.ConnectAsync(redisConfiguration);
        await using var subscriber = await ConnectionMultiplexer.ConnectAsync(redisConfiguration);
        var streams = Enumerable.Range(0, Pairs).Select(_ => System.Threading.Channels.Channel.CreateUnbounded<string>()).ToArray();
        for (var p = 0; p < Pairs; p++)
        {
            var pair = p;
            await subscriber.GetSubscriber().SubscribeAsync(Channel(pair), (_, message) => streams[pair].Writer.TryWrite((string)message!));
        }

        await using var node1 = await StartAsync(app => app.MapPost("/api/messages", async (HttpRequest request) =>
        {
            var send = await request.ReadFromJsonAsync<JsonObject>();
            var pair = int.Parse(send!["conversationId"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
            var body = send["body"]!.GetValue<string>();
            await using (var connection = new MySqlConnection(mariaDb))
            {
                await connection.OpenAsync();
                await using var insert = new MySqlCommand(Scenarios.FloorInsert, connection);
                insert.Parameters.AddWithValue("@c", pair);
                insert.Parameters.AddWithValue("@s", pair);
                insert.Parameters.AddWithValue("@b", System.Text.Encoding.UTF8.GetBytes(body));
                await insert.ExecuteNonQueryAsync();
            }
            await publisher.GetSubscriber().PublishAsync(Channel(pair), body);
            return Results.Json(new JsonObject { ["conversationId"] = pair, ["body"] = body }, statusCode: StatusCodes.Status201Created);
        }));
        await using var node2 = await StartAsync(app => app.MapGet("/api/events", async (HttpContext http) =>
        {
            // The bearer "token" names the stream's conversation.
            var pair = int.Parse(http.Request.Headers.Authorization.ToString()["Bearer ".Length..], System.Globalization.CultureInfo.InvariantCulture);
            http.Response.ContentType = "text/event-stream";
            await http.Response.Body.FlushAsync(http.RequestAborted);
            try
            {
                await foreach (var body in streams[pair].Reader.ReadAllAsync(http.RequestAborted))
                {
                    await http.Response.WriteAsync($"data: {{\"body\":{JsonSerializer.Serialize(body)}}}\n\n", http.RequestAborted);
                    await http.Response.Body.FlushAsync(http.RequestAborted);
                }
            }
            catch (OperationCanceledException) { }
        }));

        var (sendTo, receiveFrom) = (Address(node1), Address(node2));
        var sentAt = new ConcurrentDictionary<string, long>();
        var received = new ConcurrentDictionary<string, int>();
        var histogram = Scenarios.NewHistogram();
        var posts = Scenarios.NewHistogram();
        var measuring = false;
        var readers = new List<Sse>();
        for (var p = 0; p < Pairs; p++)
            readers.Add(await Sse.OpenAsync(receiveFrom, p.ToString(System.Globalization.CultureInfo.InvariantCulture), body =>
            {
                if (received.AddOrUpdate(body, 1, (_, n) => n + 1) == 1 && Volatile.Read(ref measuring) && sentAt.TryGetValue(body, out var start))
                    Scenarios.Record(histogram, start);
            }));
        var clients = Enumerable.Range(0, Pairs).Select(_ => Client.For(sendTo)).ToArray();
        long failed = 0;
        async Task SendAsync(int pair, string body, bool measured)
        {
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            sentAt[body] = start;
            try
            {
                using var response = await clients[pair].PostAsJsonAsync("/api/messages",
                    new JsonObject { ["conversationId"] = pair.ToString(System.Globalization.CultureInfo.InvariantCulture), ["body"] = body });
                if (!response.IsSuccessStatusCode) { Interlocked.Increment(ref failed); sentAt.TryRemove(body, out _); }
                else if (measured) Scenarios.Record(posts, start);
            }
            catch (HttpRequestException)
            {
                Interlocked.Increment(ref failed);
                sentAt.TryRemove(body, out _);
            }
        }
        // Unmeasured, as for AMS: one send per pair opens each client's connection first.
        await Task.WhenAll(Enumerable.Range(0, Pairs).Select(p => SendAsync(p, $"warm-up {p}", false)));
        var warm = System.Diagnostics.Stopwatch.StartNew();
        while (Enumerable.Range(0, Pairs).Any(p => !received.ContainsKey($"warm-up {p}")) && warm.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        Volatile.Write(ref measuring, true);

        var achieved = await Scenarios.PaceAsync(rate, settings.Duration, i => SendAsync(i % Pairs, $"delivery {i}", true));
        await Scenarios.DrainAsync(sentAt, received);
        foreach (var reader in readers) await reader.DisposeAsync();
        foreach (var client in clients) client.Dispose();
        var lost = sentAt.Keys.Count(k => !received.ContainsKey(k));
        var duplicated = received.Values.Count(n => n > 1);
        var (p50, p99) = (Scenarios.Milliseconds(histogram, 50), Scenarios.Milliseconds(histogram, 99));
        Console.WriteLine($"HTTP floor delivery at {achieved:F0}/s (asked {rate}/s): {sentAt.Count} sent, {lost} lost, {failed} failed; " +
            $"p50/p99 {p50:F2}/{p99:F2} ms, 201 p50/p99 {Scenarios.Milliseconds(posts, 50):F2}/{Scenarios.Milliseconds(posts, 99):F2} ms");
        return new Result($"HTTP floor delivery {rate}/s",
            $"POST (durable INSERT + PUBLISH, 201) on a bare Kestrel endpoint → SSE from a second one, in the harness's process, {rate}/s for {settings.Duration.TotalSeconds:F0} s, {Pairs} conversations, no authentication, crypto or transaction",
            histogram, [("rate achieved/s", $"{achieved:F0}"), ("sent", $"{sentAt.Count}"), ("lost", $"{lost}"),
                ("201 p50/p99 (ms)", $"{Scenarios.Milliseconds(posts, 50):F1}/{Scenarios.Milliseconds(posts, 99):F1}")],
            lost + failed + duplicated == 0 ? [] : [$"HTTP floor delivery: {lost} lost, {duplicated} duplicated, {failed} failed"])
            { Rate = achieved, TargetRate = rate, Lost = lost, Duplicated = duplicated };
    }

    static RedisChannel Channel(int pair) => RedisChannel.Literal($"bench:http-floor:{pair}");

    static async Task<WebApplication> StartAsync(Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        return app;
    }

    static Uri Address(WebApplication app) =>
        new(app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
}
