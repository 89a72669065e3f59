using System.Text;

namespace Ams.Tests.Support;

public sealed record SseEvent(string? Id, string? Event, string Data);

/// <summary>Reads a server-sent event stream from an app instance, event by event, with time limits.</summary>
public sealed class SseClient : IAsyncDisposable
{
    readonly HttpClient client;
    readonly HttpResponseMessage response;
    readonly StreamReader reader;
    readonly CancellationTokenSource life = new();
    public List<string> Comments { get; } = [];

    /// <summary>The data of each keep-alive event (the page's stream, /events, says it is alive with events, not comments); NextAsync skips them.</summary>
    public List<string> KeepAlives { get; } = [];

    SseClient(HttpClient client, HttpResponseMessage response, StreamReader reader)
    {
        this.client = client;
        this.response = response;
        this.reader = reader;
    }

    public HttpResponseMessage Response => response;

    public static async Task<SseClient> OpenAsync(IAlbaHost app, string token, string? lastEventId = null, string path = "/api/events")
    {
        var client = app.Server.CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new("Bearer", token);
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is not null) request.Headers.Add("Last-Event-ID", lastEventId);
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var stream = await response.Content.ReadAsStreamAsync();
        return new SseClient(client, response, new StreamReader(stream, Encoding.UTF8));
    }

    /// <summary>The next event, or null when the stream ends; fails after <paramref name="timeout"/>.</summary>
    public async Task<SseEvent?> NextAsync(TimeSpan? timeout = null)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(life.Token);
        limit.CancelAfter(timeout ?? TimeSpan.FromSeconds(10));
        string? id = null, name = null;
        var data = new List<string>();
        while (true)
        {
            var line = await reader.ReadLineAsync(limit.Token);
            if (line is null) return null;
            if (line.Length == 0)
            {
                if (name == "keep-alive") KeepAlives.Add(string.Join('\n', data));
                // As EventSource does: an event without a data line is not dispatched (its id is only remembered).
                else if (data.Count > 0) return new SseEvent(id, name, string.Join('\n', data));
                (id, name) = (null, null);
                data.Clear();
                continue;
            }
            if (line.StartsWith(':')) { Comments.Add(line); continue; }
            var colon = line.IndexOf(':');
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? "" : line[(colon + 1)..].TrimStart(' ');
            switch (field)
            {
                case "id": id = value; break;
                case "event": name = value; break;
                case "data": data.Add(value); break;
            }
        }
    }

    /// <summary>Reads on until the next keep-alive, comment or event (skipping anything else); fails after <paramref name="timeout"/> or at the stream's end.</summary>
    public async Task NextKeepAliveAsync(TimeSpan timeout)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(life.Token);
        limit.CancelAfter(timeout);
        while (await reader.ReadLineAsync(limit.Token) is { } line)
            if (line.StartsWith(": keep-alive", StringComparison.Ordinal) || line == "event: keep-alive") return;
        throw new EndOfStreamException("the stream ended before a keep-alive");
    }

    /// <summary>True when no event arrives within <paramref name="window"/>.</summary>
    public async Task<bool> QuietForAsync(TimeSpan window)
    {
        try
        {
            return await NextAsync(window) is null && false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        life.Cancel();
        response.Dispose();
        client.Dispose();
        await Task.CompletedTask;
    }
}
