using System.Net;
using System.Net.Sockets;

namespace Ams.Infrastructure;

public static class ClientAddress
{
    /// <summary>The peer address as the server saw it (after trusted proxies), for people to read: session lists, security history.</summary>
    public static string Of(HttpContext http)
    {
        var address = http.Connection.RemoteIpAddress;
        if (address is null) return "unknown";
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        return address.ToString();
    }

    /// <summary>
    /// The client's User-Agent, cut to what a person needs to recognise the device. Anyone's to
    /// write (a failed sign-in puts it in the account's security history), so without control and
    /// format characters: a U+202E made the rest of the line read backwards, as names and file names cannot.
    /// </summary>
    public static string UserAgentOf(HttpContext http) => new(http.Request.Headers.UserAgent.ToString()
        .Where(c => !char.IsControl(c) && char.GetUnicodeCategory(c) != System.Globalization.UnicodeCategory.Format).Take(MaxUserAgent).ToArray());

    public const int MaxUserAgent = 256;

    /// <summary>
    /// The peer address as a throttling bucket. X-Forwarded-For is only believed when
    /// <c>Network:TrustedProxies</c> lists the proxy (see Program), so a client cannot forge
    /// its way into a fresh bucket. IPv6 clients are bucketed by /64, since one host usually
    /// owns the whole prefix.
    /// </summary>
    public static string BucketOf(HttpContext http)
    {
        var address = http.Connection.RemoteIpAddress;
        if (address is null) return "unknown";
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var bytes = address.GetAddressBytes();
            Array.Clear(bytes, 8, 8);
            return new IPAddress(bytes) + "/64";
        }
        return address.ToString();
    }

    /// <summary>
    /// A comma-separated list of CIDRs (<c>10.0.0.0/8</c>, <c>fd00::/8</c>) or single addresses
    /// (a /32 or /128), for <c>Network:TrustedProxies</c> and <c>Metrics:AllowFrom</c>. A bad entry
    /// stops the server at start with the setting's name.
    /// </summary>
    public static List<IPNetwork> ParseNetworks(string setting, string key)
    {
        var networks = new List<IPNetwork>();
        foreach (var entry in setting.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (entry.Contains('/') ? IPNetwork.TryParse(entry, out var network) : TrySingle(entry, out network))
                networks.Add(network);
            else
                throw new ConfigurationException($"{key}: '{entry}' is neither an IP address nor a CIDR such as 10.0.0.0/8 or fd00::/8.");
        }
        return networks;
    }

    static bool TrySingle(string entry, out IPNetwork network)
    {
        network = default;
        if (!IPAddress.TryParse(entry, out var address)) return false;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        network = new IPNetwork(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
        return true;
    }

    /// <summary>
    /// Says once, in the log, that forwarding headers came from a peer the node does not believe:
    /// behind a TLS proxy left out of <c>Network:TrustedProxies</c> everything still works, but
    /// the node thinks it is on plain HTTP (cookies without <c>Secure</c> and the <c>__Host-</c>
    /// prefix, no HSTS) and throttles every client as the proxy's address, and nothing else shows it.
    /// </summary>
    public static IApplicationBuilder UseUntrustedForwardingWarning(this IApplicationBuilder app, IReadOnlyList<IPNetwork> trusted)
    {
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ClientAddress).FullName!);
        var warned = 0;
        return app.Use((http, next) =>
        {
            if (Volatile.Read(ref warned) == 0
                && (http.Request.Headers.ContainsKey("X-Forwarded-Proto") || http.Request.Headers.ContainsKey("X-Forwarded-For"))
                && http.Connection.RemoteIpAddress is { } peer && !IsIn(peer, trusted)
                && Interlocked.Exchange(ref warned, 1) == 0)
                logger.LogWarning("A request from {Peer} carried X-Forwarded-Proto or X-Forwarded-For, which this node ignores: Network:TrustedProxies does not list that address. " +
                    "Behind a proxy that terminates TLS, list it there, or the node sets its cookies for plain HTTP (no Secure, no __Host-) and throttles every client as the proxy. Said once.",
                    Of(http));
            return next(http);
        });
    }

    /// <summary>Whether the address (an IPv4-mapped one as IPv4) is in one of the networks: trusted proxies, who may read /metrics.</summary>
    public static bool IsIn(IPAddress address, IReadOnlyList<IPNetwork> networks)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var network in networks)
            if (network.Contains(address)) return true;
        return false;
    }
}
