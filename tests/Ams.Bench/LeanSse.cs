using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Ams.Bench;

/// <summary>
/// An event stream over a bare socket, for tens of thousands of them in this one process: no
/// HttpClient per connection, and a receive buffer only while data is arriving (a zero-byte read
/// waits for it). It understands just enough of HTTP/1.1 chunked SSE to hand each message's
/// <c>body</c> to the callback: every frame the server writes is one chunk, so a <c>data:</c> line
/// is never cut by a chunk header.
/// </summary>
sealed class LeanSse : IDisposable
{
    readonly Socket socket;
    readonly SseLines lines;

    LeanSse(Socket socket, Action<string> onBody) => (this.socket, lines) = (socket, new SseLines(onBody));

    /// <summary>Opens <c>GET /api/events</c>; <paramref name="source"/> picks the local address (loopback has
    /// fewer than 30,000 ephemeral ports per source address).</summary>
    public static async Task<LeanSse> OpenAsync(IPEndPoint server, IPAddress source, string token, Action<string> onBody)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Bind(new IPEndPoint(source, 0));
            await socket.ConnectAsync(server);
            await socket.SendAsync(Encoding.ASCII.GetBytes(
                $"GET /api/events HTTP/1.1\r\nHost: {server}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"));
            var buffer = new byte[1024];
            var filled = 0;
            int end;
            while ((end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
            {
                if (filled == buffer.Length) throw new IOException("event stream: response headers over 1 KB");
                var read = await socket.ReceiveAsync(buffer.AsMemory(filled));
                if (read == 0) throw new IOException("event stream: closed before its response headers");
                filled += read;
            }
            if (!buffer.AsSpan(0, filled).StartsWith("HTTP/1.1 200 "u8))
                throw new HttpRequestException($"event stream refused: {Encoding.ASCII.GetString(buffer, 0, buffer.AsSpan(0, filled).IndexOf("\r\n"u8))}");
            var stream = new LeanSse(socket, onBody);
            stream.lines.Feed(buffer.AsSpan(end + 4, filled - end - 4));
            _ = stream.PumpAsync();
            return stream;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    async Task PumpAsync()
    {
        try
        {
            await lines.PumpAsync(buffer => socket.ReceiveAsync(buffer));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    public void Dispose() => socket.Dispose();
}

/// <summary>
/// The <c>body</c> of each message event in an SSE byte stream, read by the bench's own stream
/// clients (<see cref="LeanSse"/>, <see cref="H2Sse"/>): a <c>data:</c> line's <c>"body":"…"</c>.
/// </summary>
sealed class SseLines(Action<string> onBody)
{
    static readonly byte[] BodyMarker = "\"body\":\""u8.ToArray();
    byte[] partial = [];   // the unfinished line of the last read

    /// <summary>Feeds what <paramref name="receive"/> reads until it ends; idle, it holds no buffer (a zero-byte read waits for data).</summary>
    public async Task PumpAsync(Func<Memory<byte>, ValueTask<int>> receive)
    {
        while (true)
        {
            _ = await receive(Memory<byte>.Empty);
            var buffer = ArrayPool<byte>.Shared.Rent(4096);
            try
            {
                var read = await receive(buffer);
                if (read == 0) return;
                Feed(buffer.AsSpan(0, read));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    public void Feed(ReadOnlySpan<byte> data)
    {
        if (partial.Length > 0)
        {
            var joined = new byte[partial.Length + data.Length];
            partial.CopyTo(joined, 0);
            data.CopyTo(joined.AsSpan(partial.Length));
            partial = [];
            data = joined;
        }
        int newline;
        while ((newline = data.IndexOf((byte)'\n')) >= 0)
        {
            var line = data[..newline];
            data = data[(newline + 1)..];
            if (!line.StartsWith("data: "u8)) continue;
            var at = line.IndexOf(BodyMarker);
            if (at < 0) continue;
            var body = line[(at + BodyMarker.Length)..];
            var close = body.IndexOf((byte)'"');
            if (close >= 0) onBody(Encoding.UTF8.GetString(body[..close]));
        }
        if (data.Length > 0) partial = data.ToArray();
    }
}
