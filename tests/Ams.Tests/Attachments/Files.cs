using System.Net.Http.Headers;
using System.Text;
using Ams.Tests.Messaging;
using Ams.Tests.Support;

namespace Ams.Tests.Attachments;

/// <summary>Upload and download helpers: multipart bodies written byte for byte, downloads read until they end or fail.</summary>
public static class Files
{
    public const int Chunk = Ams.Infrastructure.Files.ChunkCipher.ChunkSize;

    public static byte[] Random(int size, int seed = 1)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>A multipart body with one part named <paramref name="part"/>; the filename header exactly as given (UTF-8).</summary>
    public static ByteArrayContent Multipart(byte[] bytes, string? fileName, string part = "file")
    {
        const string boundary = "ams-test-boundary";
        var head = Encoding.UTF8.GetBytes($"--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"{(fileName is null ? "" : $"; filename=\"{fileName}\"")}\r\nContent-Type: text/html\r\n\r\n");
        var tail = Encoding.UTF8.GetBytes($"\r\n--{boundary}--\r\n");
        var content = new ByteArrayContent([.. head, .. bytes, .. tail]);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={boundary}");
        return content;
    }

    public static async Task<HttpResponseMessage> UploadRawAsync(this IAlbaHost app, string token, HttpContent content)
    {
        using var client = app.Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/attachments") { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await client.SendAsync(request);
    }

    public static async Task<JsonObject> UploadAsync(this IAlbaHost app, Member member, byte[] bytes, string name = "file.bin")
    {
        using var response = await app.UploadRawAsync(member.Token, Multipart(bytes, name));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(201 == (int)response.StatusCode, $"upload: expected 201, got {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    public sealed record Download(int Status, byte[] Bytes, bool Failed, HttpResponseMessage? Response);

    /// <summary>GET an attachment, reading the body to its end; Failed when the transfer broke off (an aborted response).</summary>
    public static async Task<Download> DownloadAsync(this IAlbaHost app, string token, string id, string? range = null, string path = "/api/attachments/",
        params (string Name, string Value)[] headers)
    {
        var client = app.Server.CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Get, path + id);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (range is not null) request.Headers.TryAddWithoutValidation("Range", range);
        foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            return new Download(0, [], true, null);
        }
        var received = new MemoryStream();
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync();
            await body.CopyToAsync(received);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            return new Download((int)response.StatusCode, received.ToArray(), true, response);
        }
        var bytes = received.ToArray();
        // A response shorter than it declared broke off too.
        var failed = response.Content.Headers.ContentLength is { } length && length != bytes.Length;
        return new Download((int)response.StatusCode, bytes, failed, response);
    }

    public static async Task<long> CountAsync(this Services services, string table)
    {
        var text = await services.SqlAsync($"SELECT COUNT(*) FROM {table}");
        return long.Parse(text.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The single value a query returns (root, --batch output).</summary>
}
