using System.Text;
using System.Text.Json;

namespace Ams.Features.Entropy;

public sealed class RandomOrgException(int code, string message) : Exception(message)
{
    public int Code { get; } = code;
    /// <summary>400, 401, 404, 405: the key is unknown, not running, or not valid for this call.</summary>
    public bool IsKeyProblem => Code is 400 or 401 or 404 or 405;
    /// <summary>402 requests or 403 bits exhausted: nothing to do until the quota resets at 00:00 UTC.</summary>
    public bool IsQuotaExhausted => Code is 402 or 403;
}

public sealed record RandomOrgUsage(long BitsLeft, long RequestsLeft, int AdvisoryDelayMs);

/// <summary>
/// random.org JSON-RPC 4 (<c>generateBlobs</c>, <c>getUsage</c>). The key travels only in the
/// request body; nothing here logs a request or echoes an error's <c>data</c> (which carries it).
/// </summary>
public sealed class RandomOrgClient(RandomOrgOptions options)
{
    // A blob of Entropy:BlobBits is a few kilobytes of JSON at most: a larger answer is refused
    // before it is held in memory.
    const int MaxAnswerBytes = 1 << 20;
    readonly HttpClient http = new() { Timeout = System.Threading.Timeout.InfiniteTimeSpan };   // the deadline below bounds each call
    int requestId;

    public bool Configured => options.ApiKey.Length > 0;

    /// <summary>Longest advisoryDelay obeyed: a larger one (random.org asks for seconds) would stop refills unseen.</summary>
    public static readonly TimeSpan MaxAdvisoryDelay = TimeSpan.FromMinutes(10);

    public async Task<(byte[] Blob, RandomOrgUsage Usage)> GenerateBlobAsync(int bits, CancellationToken ct)
    {
        using var result = await CallAsync("generateBlobs", w =>
        {
            w.WriteNumber("n", 1);
            w.WriteNumber("size", bits);
            w.WriteString("format", "base64");
        }, ct);
        var root = Field(result.RootElement, "result", JsonValueKind.Object);
        var data = Field(Field(root, "random", JsonValueKind.Object), "data", JsonValueKind.Array);
        if (data.GetArrayLength() != 1 || data[0].ValueKind != JsonValueKind.String) throw Unreadable("result.random.data is not one blob");
        var blob = new byte[bits / 8 + 3];
        if (!Convert.TryFromBase64String(data[0].GetString()!, blob, out var length)) throw Unreadable("the blob is not base64 of at most the bits asked for");
        if (length * 8 != bits) throw new RandomOrgException(0, $"random.org returned {length * 8} bits instead of {bits}");
        var delay = root.TryGetProperty("advisoryDelay", out var advised) && advised.ValueKind == JsonValueKind.Number ? advised.GetDouble() : 0;
        return (blob[..length], Usage(root, TimeSpan.FromMilliseconds(Math.Clamp(delay, 0, MaxAdvisoryDelay.TotalMilliseconds))));
    }

    public async Task<RandomOrgUsage> GetUsageAsync(CancellationToken ct)
    {
        using var result = await CallAsync("getUsage", _ => { }, ct);
        return Usage(Field(result.RootElement, "result", JsonValueKind.Object), TimeSpan.Zero);
    }

    static RandomOrgUsage Usage(JsonElement result, TimeSpan advisoryDelay) =>
        Field(result, "bitsLeft", JsonValueKind.Number).TryGetInt64(out var bits) && Field(result, "requestsLeft", JsonValueKind.Number).TryGetInt64(out var requests)
            ? new RandomOrgUsage(bits, requests, (int)advisoryDelay.TotalMilliseconds)
            : throw Unreadable("bitsLeft or requestsLeft is not a whole number");

    static JsonElement Field(JsonElement parent, string name, JsonValueKind kind) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var value) && value.ValueKind == kind
            ? value : throw Unreadable($"no {name} of the right type");

    static RandomOrgException Unreadable(string what) => new(0, $"random.org's answer could not be read: {what}");

    async Task<JsonDocument> CallAsync(string method, Action<Utf8JsonWriter> parameters, CancellationToken ct)
    {
        using var body = new MemoryStream();
        await using (var w = new Utf8JsonWriter(body))
        {
            w.WriteStartObject();
            w.WriteString("jsonrpc", "2.0");
            w.WriteString("method", method);
            w.WriteStartObject("params");
            w.WriteString("apiKey", options.ApiKey);
            parameters(w);
            w.WriteEndObject();
            w.WriteNumber("id", Interlocked.Increment(ref requestId));
            w.WriteEndObject();
        }
        using var content = new ByteArrayContent(body.ToArray());
        content.Headers.ContentType = new("application/json") { CharSet = "utf-8" };
        using var request = new HttpRequestMessage(HttpMethod.Post, options.Endpoint) { Content = content };
        // RandomOrg:Timeout bounds the whole call, the answer's body included (a slow drip too).
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(options.Timeout);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
        if (!response.IsSuccessStatusCode)
            throw new RandomOrgException(0, $"random.org answered HTTP {(int)response.StatusCode}");
        var answer = new MemoryStream();
        await using (var stream = await response.Content.ReadAsStreamAsync(deadline.Token))
        {
            var buffer = new byte[16384];
            for (int read; (read = await stream.ReadAsync(buffer, deadline.Token)) > 0;)
            {
                if (answer.Length + read > MaxAnswerBytes) throw Unreadable($"larger than {MaxAnswerBytes / 1024} KiB");
                answer.Write(buffer, 0, read);
            }
        }
        JsonDocument document;
        try { document = JsonDocument.Parse(answer.GetBuffer().AsMemory(0, (int)answer.Length)); }
        catch (JsonException) { throw Unreadable("not JSON"); }
        if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("error", out var error))
        {
            var code = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.Number && c.TryGetInt32(out var n) ? n : 0;
            var message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            document.Dispose();
            throw new RandomOrgException(code, $"random.org error {code}: {Printable(message ?? "no message")}");
        }
        return document;
    }

    // Its message goes to the log and to /api/entropy: 200 characters, no control characters, and
    // never the key, whatever random.org (or whatever answers at its address) chose to put in it.
    string Printable(string text)
    {
        text = new string(text.Select(ch => char.IsControl(ch) ? ' ' : ch).ToArray());
        if (options.ApiKey.Length > 0) text = text.Replace(options.ApiKey, "[API key]", StringComparison.Ordinal);
        return text.Length <= 200 ? text : text[..200];
    }
}
