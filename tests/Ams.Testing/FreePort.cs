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
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

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
