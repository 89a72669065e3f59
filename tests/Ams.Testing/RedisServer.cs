using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Ams.Testing;

/// <summary>
/// A private, non-persistent redis-server on a free loopback port. It can be stopped and started
/// again on the same port, so tests can watch the app lose and regain Redis.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private const int PortAttempts = 5;
    private const string Pong = "+PONG\r\n";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(20);

    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private ServerProcess? _process;
    private bool _disposed;

    private RedisServer(string dir, int port)
    {
        Dir = dir;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Working directory of the server (holds its log, redis.log).</summary>
    public string Dir { get; }

    /// <summary>StackExchange.Redis configuration string.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public bool IsRunning => _process is { HasExited: false };

    public static async Task<RedisServer> StartAsync(CancellationToken ct = default)
    {
        var dir = Directory.CreateTempSubdirectory("ams-redis-").FullName;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var server = new RedisServer(dir, FreePort.Next());
                try
                {
                    await server.StartAgainAsync(ct);
                    return server;
                }
                catch (PortTakenException) when (attempt < PortAttempts)
                {
                    // Another process took the port between FreePort.Next() and the bind: pick another.
                }
            }
        }
        catch
        {
            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    /// <summary>Shuts the server down (SIGTERM, SIGKILL after 20 s). Its port stays reserved for us only by convention.</summary>
    public async Task StopAsync()
    {
        await _lifecycle.WaitAsync();
        try
        {
            await StopCoreAsync();
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Freezes the server (SIGSTOP): connections stay open, nothing is answered until <see cref="Resume"/>.</summary>
    public void Pause() => (_process ?? throw new InvalidOperationException("redis-server is not running")).Pause();

    public void Resume() => _process?.Resume();

    /// <summary>Starts a fresh (empty) server on the same <see cref="Port"/>; no-op if it is running.</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        await _lifecycle.WaitAsync(ct);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (IsRunning)
            {
                return;
            }
            _process?.Dispose();
            _process = await ServerProcess.StartAsync("redis-server",
            [
                "--port", Port.ToString(),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", Dir,
            ], Path.Combine(Dir, "redis.log"), Dir, ct);
            try
            {
                await WaitUntilReadyAsync(_process, Port, ct);
            }
            catch
            {
                await StopCoreAsync();
                _process.Dispose();
                _process = null;
                throw;
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _lifecycle.WaitAsync();
        try
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            await StopCoreAsync();
            _process?.Dispose();
            _process = null;
            Directory.Delete(Dir, recursive: true);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    private async Task StopCoreAsync()
    {
        if (_process is not null)
        {
            await _process.StopAsync(StopGrace);
        }
    }

    /// <summary>
    /// Ready means PING answers +PONG and INFO reports our pid: a PONG alone could come from
    /// a server somebody else started on the port we picked.
    /// </summary>
    private static async Task WaitUntilReadyAsync(ServerProcess process, int port, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(StartTimeout);
        try
        {
            while (true)
            {
                if (process.HasExited)
                {
                    var log = process.LogTail();
                    throw log.Contains("Address already in use", StringComparison.Ordinal)
                        ? new PortTakenException($"Port {port} is taken. redis-server log tail:\n{log}")
                        : new InvalidOperationException($"redis-server exited before it was ready. Log tail:\n{log}");
                }
                var info = await TryPingAndInfoAsync(port, timeout.Token);
                if (info is not null)
                {
                    if (!info.Contains($"process_id:{process.Id}\r\n", StringComparison.Ordinal))
                    {
                        throw new PortTakenException($"Another Redis answers on port {port}.");
                    }
                    return;
                }
                await Task.Delay(10, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"redis-server did not answer PING within {StartTimeout.TotalSeconds} s. Log tail:\n{process.LogTail()}");
        }
    }

    /// <summary>Returns the INFO server text if PING got +PONG, null if nothing useful answered yet.</summary>
    private static async Task<string?> TryPingAndInfoAsync(int port, CancellationToken ct)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port, ct);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\nINFO server\r\n"u8.ToArray(), ct);
            var reply = new StringBuilder();
            var buffer = new byte[4096];
            // Replies: "+PONG\r\n" then a bulk string "$<length>\r\n<length bytes>\r\n".
            while (true)
            {
                var read = await stream.ReadAsync(buffer, ct);
                if (read == 0)
                {
                    return null;
                }
                reply.Append(Encoding.ASCII.GetString(buffer, 0, read));
                var text = reply.ToString();
                if (text.Length < Pong.Length)
                {
                    if (Pong.StartsWith(text, StringComparison.Ordinal))
                    {
                        continue;
                    }
                    return null;
                }
                if (!text.StartsWith(Pong, StringComparison.Ordinal))
                {
                    // -LOADING, or an error such as NOAUTH: not ready, or not ours.
                    return null;
                }
                var bulk = text.AsSpan(Pong.Length);
                var headerEnd = bulk.IndexOf("\r\n");
                if (headerEnd > 1 && bulk[0] == '$' && int.TryParse(bulk[1..headerEnd], out var length)
                    && bulk.Length >= headerEnd + 2 + length)
                {
                    return bulk.Slice(headerEnd + 2, length).ToString();
                }
            }
        }
        catch (SocketException)
        {
            return null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private sealed class PortTakenException(string message) : InvalidOperationException(message);
}
