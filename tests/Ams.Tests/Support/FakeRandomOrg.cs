using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Support;

/// <summary>What the blobs served by <see cref="FakeRandomOrg"/> contain.</summary>
public enum BlobKind
{
    /// <summary>Bytes from <see cref="RandomNumberGenerator"/>.</summary>
    Random,
    /// <summary>All zero bytes.</summary>
    Zeros,
    /// <summary>One random byte repeated over the whole blob (a fresh byte per blob).</summary>
    Repeated,
    /// <summary>"ABAB…" (0x41, 0x42, 0x41, …).</summary>
    Alternating,
}

/// <summary>
/// A fake random.org JSON-RPC 4 server (generateBlobs, getUsage) on a free 127.0.0.1 port, hosted with Kestrel.
/// JSON-RPC errors are answered with HTTP 200, as random.org does.
/// Order of checks per call: malformed JSON (-32700), invalid request (-32600), <see cref="ErrorCode"/> override,
/// unknown method (-32601), invalid params (-32602), unknown key (400), requests exhausted (402), bits exhausted (403).
/// </summary>
public sealed class FakeRandomOrg : IAsyncDisposable
{
    public const string ValidKey = "test-key-0123456789";
    public const string Path = "/json-rpc/4/invoke";

    readonly WebApplication app;
    readonly CancellationTokenSource stopping = new();
    readonly Lock gate = new();
    readonly List<byte[]> served = [];
    readonly List<string> apiKeysSeen = [];

    int? errorCode;
    TimeSpan delay;
    bool hang;
    bool cutShort;
    BlobKind blobs = BlobKind.Random;
    byte[]? reply;
    int advisoryDelayMs;
    long bitsLeft = 250_000;
    long requestsLeft = 1_000;
    long bitsServed;
    long totalRequests;
    int generateBlobsCalls;
    int getUsageCalls;
    int inFlight;
    int maxConcurrent;
    int disposed;

    FakeRandomOrg(WebApplication app, Uri endpoint)
    {
        this.app = app;
        Endpoint = endpoint;
    }

    /// <summary>e.g. http://127.0.0.1:PORT/json-rpc/4/invoke</summary>
    public Uri Endpoint { get; }

    // ---- Behaviour switches (thread-safe) ----

    /// <summary>When set, every call answers with this JSON-RPC error code instead of a result.</summary>
    public int? ErrorCode { get { lock (gate) return errorCode; } set { lock (gate) errorCode = value; } }

    /// <summary>Wait this long before answering (nothing is consumed if the client gives up meanwhile).</summary>
    public TimeSpan Delay { get { lock (gate) return delay; } set { lock (gate) delay = value; } }

    /// <summary>Never answer until the request is aborted (or the server is disposed).</summary>
    public bool Hang { get => Volatile.Read(ref hang); set => Volatile.Write(ref hang, value); }

    /// <summary>Declare a body 1,000 bytes longer than the answer, send half of it, then drop the connection.</summary>
    public bool CutShort { get => Volatile.Read(ref cutShort); set => Volatile.Write(ref cutShort, value); }

    public BlobKind Blobs { get { lock (gate) return blobs; } set { lock (gate) blobs = value; } }

    /// <summary>When set, every call is answered with exactly these bytes (HTTP 200, application/json), whatever it asked.</summary>
    public byte[]? Reply { get { lock (gate) return reply; } set { lock (gate) reply = value; } }

    /// <summary>Returned as advisoryDelay (ms) in generateBlobs results.</summary>
    public int AdvisoryDelayMs { get { lock (gate) return advisoryDelayMs; } set { lock (gate) advisoryDelayMs = value; } }

    /// <summary>Decremented by bits served; a request that would exceed it gets error 403.</summary>
    public long BitsLeft { get { lock (gate) return bitsLeft; } set { lock (gate) bitsLeft = value; } }

    /// <summary>Decremented per successful generateBlobs call; when 0, generateBlobs gets error 402.</summary>
    public long RequestsLeft { get { lock (gate) return requestsLeft; } set { lock (gate) requestsLeft = value; } }

    // ---- Observations ----

    /// <summary>Total bits of blob data actually returned.</summary>
    public long BitsServed { get { lock (gate) return bitsServed; } }

    /// <summary>generateBlobs calls received (well-formed JSON-RPC requests naming the method), whatever their outcome.</summary>
    public int GenerateBlobsCalls => Volatile.Read(ref generateBlobsCalls);

    /// <summary>getUsage calls received, whatever their outcome.</summary>
    public int GetUsageCalls => Volatile.Read(ref getUsageCalls);

    /// <summary>The highest number of HTTP requests in flight at once.</summary>
    public int MaxConcurrentRequests => Volatile.Read(ref maxConcurrent);

    /// <summary>Every blob returned, decoded, in order.</summary>
    public IReadOnlyList<byte[]> Served { get { lock (gate) return served.ToArray(); } }

    /// <summary>The apiKey of every call that carried a string apiKey, in order.</summary>
    public IReadOnlyList<string> ApiKeysSeen { get { lock (gate) return apiKeysSeen.ToArray(); } }

    public static async Task<FakeRandomOrg> StartAsync()
    {
        // The empty builder reads no appsettings/environment configuration, so nothing of the app under test leaks in.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();

        FakeRandomOrg? self = null;
        app.Run(context => self!.HandleAsync(context));
        await app.StartAsync();

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is null)
        {
            await app.DisposeAsync();
            throw new InvalidOperationException("Kestrel reported no bound address.");
        }
        var port = new Uri(address).Port;
        self = new FakeRandomOrg(app, new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}{Path}"));
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0) return;
        await stopping.CancelAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try { await app.StopAsync(timeout.Token); } catch (OperationCanceledException) { }
        }
        await app.DisposeAsync();
        stopping.Dispose();
    }

    async Task HandleAsync(HttpContext context)
    {
        var now = Interlocked.Increment(ref inFlight);
        for (var max = Volatile.Read(ref maxConcurrent); now > max; max = Volatile.Read(ref maxConcurrent))
            if (Interlocked.CompareExchange(ref maxConcurrent, now, max) == max) break;
        try
        {
            if (context.Request.Path != Path) { context.Response.StatusCode = StatusCodes.Status404NotFound; return; }
            if (!HttpMethods.IsPost(context.Request.Method)) { context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed; return; }

            using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping.Token);
            var ct = aborted.Token;

            byte[] body;
            using (var buffer = new MemoryStream())
            {
                await context.Request.Body.CopyToAsync(buffer, ct);
                body = buffer.ToArray();
            }

            if (Hang) await Task.Delay(Timeout.Infinite, ct);
            var wait = Delay;
            if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);

            var response = Reply ?? Process(body);
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/json";
            if (CutShort)
            {
                context.Response.ContentLength = response.Length + 1000;
                await context.Response.Body.WriteAsync(response.AsMemory(0, response.Length / 2), ct);
                await context.Response.Body.FlushAsync(ct);
                // The bytes on their way before the reset: an abort at once can overtake them.
                await Task.Delay(200, ct);
                context.Abort();
                return;
            }
            await context.Response.Body.WriteAsync(response, ct);
        }
        catch (OperationCanceledException)
        {
            // Client went away or the server is stopping: no answer.
        }
        finally
        {
            Interlocked.Decrement(ref inFlight);
        }
    }

    byte[] Process(byte[] body)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(body);
            root = doc.RootElement.Clone();
        }
        catch (JsonException)
        {
            return Error(null, -32700, "Parse error");
        }

        if (root.ValueKind != JsonValueKind.Object) return Error(null, -32600, "Invalid Request");
        JsonElement? id = root.TryGetProperty("id", out var idElement) ? idElement : null;
        if (!root.TryGetProperty("jsonrpc", out var version) || version.ValueKind != JsonValueKind.String || version.GetString() != "2.0"
            || !root.TryGetProperty("method", out var methodElement) || methodElement.ValueKind != JsonValueKind.String)
            return Error(id, -32600, "Invalid Request");

        var method = methodElement.GetString()!;
        if (method == "generateBlobs") Interlocked.Increment(ref generateBlobsCalls);
        else if (method == "getUsage") Interlocked.Increment(ref getUsageCalls);

        var parameters = root.TryGetProperty("params", out var p) && p.ValueKind == JsonValueKind.Object ? p : (JsonElement?)null;
        string? apiKey = parameters is { } ps && ps.TryGetProperty("apiKey", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
        if (apiKey is not null) lock (gate) apiKeysSeen.Add(apiKey);

        var forced = ErrorCode;
        if (forced is { } code) return Error(id, code, MessageFor(code), apiKey);

        return method switch
        {
            "generateBlobs" => GenerateBlobs(id, parameters, apiKey),
            "getUsage" => GetUsage(id, parameters, apiKey),
            _ => Error(id, -32601, "Method not found", method),
        };
    }

    byte[] GenerateBlobs(JsonElement? id, JsonElement? parameters, string? apiKey)
    {
        if (parameters is not { } ps) return InvalidParams(id, "params must be an object");
        if (apiKey is null) return InvalidParams(id, "apiKey is missing");
        if (!TryInt(ps, "n", out var n) || n < 1 || n > 100) return InvalidParams(id, "n must be an integer in 1..100");
        if (!TryInt(ps, "size", out var size) || size < 1 || size > 1_048_576 || size % 8 != 0)
            return InvalidParams(id, "size must be a multiple of 8 in 1..1048576");
        var format = "base64";
        if (ps.TryGetProperty("format", out var f))
        {
            format = f.ValueKind == JsonValueKind.String ? f.GetString()! : "";
            if (format is not ("base64" or "hex")) return InvalidParams(id, "format must be base64 or hex");
        }
        if (apiKey != ValidKey) return Error(id, 400, MessageFor(400), apiKey);

        var bits = (long)n * size;
        var blobsOut = new byte[n][];
        long left, requests;
        int advisory;
        lock (gate)
        {
            if (requestsLeft <= 0) return Error(id, 402, MessageFor(402), apiKey);
            if (bits > bitsLeft) return Error(id, 403, MessageFor(403), apiKey);
            for (var i = 0; i < n; i++) blobsOut[i] = MakeBlob(blobs, size / 8);
            requestsLeft--;
            bitsLeft -= bits;
            bitsServed += bits;
            totalRequests++;
            served.AddRange(blobsOut);
            left = bitsLeft;
            requests = requestsLeft;
            advisory = advisoryDelayMs;
        }

        return Write(w =>
        {
            w.WriteStartObject("result");
            w.WriteStartObject("random");
            w.WriteStartArray("data");
            foreach (var blob in blobsOut)
                w.WriteStringValue(format == "hex" ? Convert.ToHexStringLower(blob) : Convert.ToBase64String(blob));
            w.WriteEndArray();
            w.WriteString("completionTime", DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            w.WriteEndObject();
            w.WriteNumber("bitsUsed", bits);
            w.WriteNumber("bitsLeft", left);
            w.WriteNumber("requestsLeft", requests);
            w.WriteNumber("advisoryDelay", advisory);
            w.WriteEndObject();
        }, id);
    }

    byte[] GetUsage(JsonElement? id, JsonElement? parameters, string? apiKey)
    {
        if (parameters is null) return InvalidParams(id, "params must be an object");
        if (apiKey is null) return InvalidParams(id, "apiKey is missing");
        if (apiKey != ValidKey) return Error(id, 400, MessageFor(400), apiKey);

        long left, requests, totalBits, total;
        lock (gate)
        {
            left = bitsLeft;
            requests = requestsLeft;
            totalBits = bitsServed;
            total = totalRequests;
        }
        return Write(w =>
        {
            w.WriteStartObject("result");
            w.WriteString("status", "running");
            w.WriteString("creationTime", "2026-01-01 00:00:00Z");
            w.WriteNumber("bitsLeft", left);
            w.WriteNumber("requestsLeft", requests);
            w.WriteNumber("totalBits", totalBits);
            w.WriteNumber("totalRequests", total);
            w.WriteEndObject();
        }, id);
    }

    static byte[] MakeBlob(BlobKind kind, int length)
    {
        var blob = new byte[length];
        switch (kind)
        {
            case BlobKind.Zeros:
                break;
            case BlobKind.Repeated:
                Array.Fill(blob, (byte)RandomNumberGenerator.GetInt32(256));
                break;
            case BlobKind.Alternating:
                for (var i = 0; i < length; i++) blob[i] = (byte)(i % 2 == 0 ? 'A' : 'B');
                break;
            default:
                RandomNumberGenerator.Fill(blob);
                break;
        }
        return blob;
    }

    static bool TryInt(JsonElement parameters, string name, out int value)
    {
        value = 0;
        return parameters.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out value);
    }

    static string MessageFor(int code) => code switch
    {
        400 => "The API key you specified does not exist",
        401 => "The API key you specified is not running",
        402 => "The API key you specified has exceeded its daily request allowance",
        403 => "The API key you specified has exceeded its daily bit allowance",
        404 => "The API key you specified is not valid for the method you requested",
        405 => "The API key you specified is not valid for the version of the API you invoked",
        -32700 => "Parse error",
        -32600 => "Invalid Request",
        -32601 => "Method not found",
        -32602 => "Invalid params",
        -32603 => "Internal error",
        _ => $"Error {code.ToString(CultureInfo.InvariantCulture)}",
    };

    static byte[] InvalidParams(JsonElement? id, string detail) => Error(id, -32602, "Invalid params", detail);

    static byte[] Error(JsonElement? id, int code, string message, params string?[] data) => Write(w =>
    {
        w.WriteStartObject("error");
        w.WriteNumber("code", code);
        w.WriteString("message", message);
        w.WriteStartArray("data");
        foreach (var item in data)
            if (item is not null) w.WriteStringValue(item);
        w.WriteEndArray();
        w.WriteEndObject();
    }, id);

    static byte[] Write(Action<Utf8JsonWriter> payload, JsonElement? id)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("jsonrpc", "2.0");
            payload(w);
            w.WritePropertyName("id");
            if (id is { } value) value.WriteTo(w); else w.WriteNullValue();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
