using System.Text.Json.Nodes;

namespace Ams.Bench;

/// <summary>A minimal server-sent events reader: calls back with each message's body.</summary>
sealed class Sse : IAsyncDisposable
{
    readonly HttpClient client;
    readonly CancellationTokenSource stop;
    readonly Task pump;

    Sse(HttpClient client, CancellationTokenSource stop, Task pump)
    {
        this.client = client;
        this.stop = stop;
        this.pump = pump;
    }

    public static async Task<Sse> OpenAsync(Uri node, string token, Action<string>? onBody)
    {
        var client = Client.For(node, token);
        client.Timeout = Timeout.InfiniteTimeSpan;
        var response = await client.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var stop = new CancellationTokenSource();
        var pump = Task.Run(async () =>
        {
            try
            {
                while (await reader.ReadLineAsync(stop.Token) is { } line)
                {
                    if (onBody is null || !line.StartsWith("data: {", StringComparison.Ordinal)) continue;
                    var node = JsonNode.Parse(line.AsSpan(6).ToString());
                    if (node?["body"]?.GetValue<string>() is { } body) onBody(body);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException) { }
            finally { response.Dispose(); }
        });
        return new Sse(client, stop, pump);
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        client.Dispose();
        await pump.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
    }
}
