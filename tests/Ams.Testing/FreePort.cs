using System.Net;
using System.Net.Sockets;

namespace Ams.Testing;

/// <summary>Picks loopback ports for servers that cannot be told "any free port".</summary>
public static class FreePort
{
    /// <summary>
    /// Returns a loopback port that was free a moment ago. Neither mariadbd nor redis-server
    /// treats port 0 as "pick one", so the caller must start its server on this port and retry
    /// with another one if somebody else took it in between.
    /// </summary>
    public static int Next()
    {
        // The kernel may hand the same port out again at once, so two calls in a row (a server
        // with two ports, such as Caddy's http_port and https_port) could get one port twice:
        // a port handed out recently is not handed out again.
        while (true)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port;
            try
            {
                port = ((IPEndPoint)listener.LocalEndpoint).Port;
            }
            finally
            {
                listener.Stop();
            }
            lock (recent)
            {
                if (!recent.Add(port)) continue;
                order.Enqueue(port);
                if (order.Count > RecentLimit) recent.Remove(order.Dequeue());
                return port;
            }
        }
    }

    const int RecentLimit = 4096;
    static readonly HashSet<int> recent = [];
    static readonly Queue<int> order = new();

    /// <summary>True if something accepts TCP connections on 127.0.0.1:<paramref name="port"/>.</summary>
    public static async Task<bool> AcceptsAsync(int port, CancellationToken ct = default)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(IPAddress.Loopback, port, ct);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
