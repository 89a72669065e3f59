using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>Attachments on the AOT binary behind Kestrel: a multi-chunk streamed upload past the 64 KiB body limit, ranges, sending and deleting.</summary>
public sealed class AttachmentSmokeTests(AppProcess app) : IClassFixture<AppProcess>
{
    [Fact]
    public async Task Upload_download_range_send_and_delete()
    {
        var (_, a) = await app.UserAsync("fa");
        var (bob, b) = await app.UserAsync("fb");
        var bytes = new byte[3 * 256 * 1024 + 777];
        Random.Shared.NextBytes(bytes);
        bytes[0] = 0x25; bytes[1] = 0x50; bytes[2] = 0x44; bytes[3] = 0x46; bytes[4] = 0x2D;   // %PDF-

        // Streamed: chunked transfer encoding, no Content-Length.
        using var form = new MultipartFormDataContent();
        var file = new StreamContent(new MemoryStream(bytes));
        form.Add(file, "file", "résumé.pdf");
        using var upload = new HttpRequestMessage(HttpMethod.Post, "/api/attachments") { Content = form };
        upload.Headers.TransferEncodingChunked = true;
        var attachment = await SmokeUsers.JsonAsync(await a.SendAsync(upload), HttpStatusCode.Created);
        Assert.Equal("application/pdf", attachment["contentType"]!.GetValue<string>());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), attachment["sha256"]!.GetValue<string>());
        Assert.Equal("résumé.pdf", attachment["name"]!.GetValue<string>());
        var id = attachment["id"]!.GetValue<string>();

        using (var download = await a.GetAsync($"/api/attachments/{id}"))
        {
            Assert.Equal(HttpStatusCode.OK, download.StatusCode);
            Assert.Equal(bytes, await download.Content.ReadAsByteArrayAsync());
            Assert.Equal("résumé.pdf", download.Content.Headers.ContentDisposition?.FileNameStar);
            Assert.Contains("sandbox", string.Join(",", download.Headers.GetValues("Content-Security-Policy")));
        }
        using (var range = new HttpRequestMessage(HttpMethod.Get, $"/api/attachments/{id}"))
        {
            range.Headers.Range = new RangeHeaderValue(256 * 1024 - 3, 256 * 1024 + 3);
            using var partial = await a.SendAsync(range);
            Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
            Assert.Equal(bytes[(256 * 1024 - 3)..(256 * 1024 + 4)], await partial.Content.ReadAsByteArrayAsync());
        }
        Assert.Equal(HttpStatusCode.NotFound, (await b.GetAsync($"/api/attachments/{id}")).StatusCode);

        var sent = await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/messages", new { to = bob, body = "", attachments = new[] { id } }), HttpStatusCode.Created);
        Assert.Equal(id, sent["attachments"]![0]!["id"]!.GetValue<string>());
        Assert.Equal(bytes, await b.GetByteArrayAsync($"/api/attachments/{id}"));
        var history = await SmokeUsers.JsonAsync(await b.GetAsync($"/api/conversations/{sent["conversationId"]!.GetValue<string>()}/messages"), HttpStatusCode.OK);
        Assert.Equal(id, history["messages"]![0]!["attachments"]![0]!["id"]!.GetValue<string>());

        // Too large: the server's default limit is 25 MiB.
        using (var big = new MultipartFormDataContent())
        {
            big.Add(new ByteArrayContent(new byte[25 * 1024 * 1024 + 1]), "file", "big.bin");
            using var tooLarge = await a.PostAsync("/api/attachments", big);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        }

        Assert.Equal(HttpStatusCode.Forbidden, (await b.DeleteAsync($"/api/messages/{sent["id"]!.GetValue<string>()}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await a.DeleteAsync($"/api/messages/{sent["id"]!.GetValue<string>()}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await b.GetAsync($"/api/attachments/{id}")).StatusCode);
        var tombstone = await SmokeUsers.JsonAsync(await b.GetAsync($"/api/conversations/{sent["conversationId"]!.GetValue<string>()}/messages"), HttpStatusCode.OK);
        Assert.True(tombstone["messages"]![0]!["deleted"]!.GetValue<bool>());
    }
}
