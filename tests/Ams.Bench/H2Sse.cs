using System.Net;
using System.Net.Http.Headers;

namespace Ams.Bench;

/// <summary>
/// An event stream over cleartext HTTP/2 (prior knowledge): many streams share one TCP connection
/// (Kestrel allows 100 to a connection), so a node holds tens of thousands under an open-files
/// limit that as many HTTP/1.1 connections would exceed, and the bench measures what the node
/// spends per stream at 50,000. Idle, a stream holds no receive buffer (a zero-byte read waits for
/// data).
/// </summary>
sealed class H2Sse : IDisposable
{
    readonly HttpResponseMessage response;

    H2Sse(HttpResponseMessage response) => this.response = response;

    /// <summary>One client for all the streams: it opens another connection whenever the open ones carry their 100.</summary>
    public static HttpClient Client(Uri h2c) => new(new SocketsHttpHandler
    {
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
    })
    {
        BaseAddress = h2c,
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public static async Task<H2Sse> OpenAsync(HttpClient client, string token, Action<string> onBody)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events")
        {
            Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        try
        {
            if (response.StatusCode != HttpStatusCode.OK || response.Version != HttpVersion.Version20)
                throw new HttpRequestException($"event stream refused: HTTP/{response.Version} {(int)response.StatusCode}");
            var stream = new H2Sse(response);
            _ = PumpAsync(await response.Content.ReadAsStreamAsync(), new SseLines(onBody));
            return stream;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    static async Task PumpAsync(Stream body, SseLines lines)
    {
        try
        {
            await lines.PumpAsync(buffer => body.ReadAsync(buffer));
        }
        catch (Exception e) when (e is IOException or HttpRequestException or ObjectDisposedException or OperationCanceledException) { }
    }

    public void Dispose() => response.Dispose();
}
