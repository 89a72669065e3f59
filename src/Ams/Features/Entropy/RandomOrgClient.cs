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
    readonly HttpClient http = new() { Timeout = options.Timeout };
    int requestId;

    public bool Configured => options.ApiKey.Length > 0;

    public async Task<(byte[] Blob, RandomOrgUsage Usage)> GenerateBlobAsync(int bits, CancellationToken ct)
    {
        using var result = await CallAsync("generateBlobs", w =>
        {
            w.WriteNumber("n", 1);
            w.WriteNumber("size", bits);
            w.WriteString("format", "base64");
        }, ct);
        var root = result.RootElement.GetProperty("result");
        var blob = Convert.FromBase64String(root.GetProperty("random").GetProperty("data")[0].GetString()!);
        if (blob.Length * 8 != bits) throw new RandomOrgException(0, $"random.org returned {blob.Length * 8} bits instead of {bits}");
        return (blob, new RandomOrgUsage(root.GetProperty("bitsLeft").GetInt64(), root.GetProperty("requestsLeft").GetInt64(),
            root.TryGetProperty("advisoryDelay", out var delay) ? delay.GetInt32() : 0));
    }

    public async Task<RandomOrgUsage> GetUsageAsync(CancellationToken ct)
    {
        using var result = await CallAsync("getUsage", _ => { }, ct);
        var root = result.RootElement.GetProperty("result");
        return new RandomOrgUsage(root.GetProperty("bitsLeft").GetInt64(), root.GetProperty("requestsLeft").GetInt64(), 0);
    }

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
        using var response = await http.PostAsync(options.Endpoint, content, ct);
        if (!response.IsSuccessStatusCode)
            throw new RandomOrgException(0, $"random.org answered HTTP {(int)response.StatusCode}");
        var document = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), cancellationToken: ct);
        if (document.RootElement.TryGetProperty("error", out var error))
        {
            var code = error.GetProperty("code").GetInt32();
            var message = error.TryGetProperty("message", out var m) ? m.GetString() : null;
            document.Dispose();
            throw new RandomOrgException(code, $"random.org error {code}: {Truncate(message ?? "no message")}");
        }
        return document;
    }

    static string Truncate(string text) => text.Length <= 200 ? text : text[..200];
}
