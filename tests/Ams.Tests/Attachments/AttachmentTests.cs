using Ams.Infrastructure;
using System.Security.Cryptography;
using System.Text;
using FileNames = Ams.Features.Attachments.FileNames;
using Sweeper = Ams.Features.Attachments.Sweeper;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Tests.Attachments;

/// <summary>api.md "Attachments": streamed, chunk-sealed uploads and downloads, ranges, limits, access and crypto-shredding.</summary>
public sealed class AttachmentTests(Services services) : IClassFixture<Services>
{
    const int C = Files.Chunk;

    static string Hex(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(C - 1)]
    [InlineData(C)]
    [InlineData(C + 1)]
    [InlineData(2 * C)]
    [InlineData(4 * C + 12345)]
    public async Task Bytes_round_trip_identical(int size)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ra");
        var bytes = Files.Random(size, size);
        var uploaded = await app.UploadAsync(alice, bytes, "data.bin");
        Assert.Equal(size, uploaded["size"]!.GetValue<long>());
        Assert.Equal(Hex(bytes), uploaded["sha256"].Str());
        Assert.Equal("data.bin", uploaded["name"].Str());
        var download = await app.DownloadAsync(alice.Token, uploaded.Id());
        Assert.Equal(200, download.Status);
        Assert.False(download.Failed);
        Assert.Equal(bytes, download.Bytes);
        Assert.Equal(size, download.Response!.Content.Headers.ContentLength);
        var chunks = long.Parse(await services.ScalarAsync($"SELECT COUNT(*) FROM attachment_chunks WHERE attachment_id = {uploaded.Id()}"));
        Assert.Equal((size + C - 1) / C, chunks);
    }

    [Fact]
    public async Task The_maximum_is_stored_and_one_byte_over_is_413_with_nothing_left_behind()
    {
        const int max = C + 1000;
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(settings: [new("Attachments:MaxBytes", max.ToString())],
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var alice = await app.MemberAsync("mx");
        var exact = Files.Random(max, 7);
        var stored = await app.UploadAsync(alice, exact);
        Assert.Equal(exact, (await app.DownloadAsync(alice.Token, stored.Id())).Bytes);

        var counts = await CountsAsync();
        using var over = await app.UploadRawAsync(alice.Token, Files.Multipart(Files.Random(max + 1, 8), "big.bin"));
        Assert.Equal(413, (int)over.StatusCode);
        Assert.StartsWith("application/problem+json", over.Content.Headers.ContentType?.ToString());
        Assert.Contains("too large", await over.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        using var wayOver = await app.UploadRawAsync(alice.Token, Files.Multipart(Files.Random(5 * C, 9), "bigger.bin"));
        Assert.Equal(413, (int)wayOver.StatusCode);
        Assert.Equal(counts, await CountsAsync());
    }

    async Task<(long, long, long)> CountsAsync() =>
        (await services.CountAsync("attachments"), await services.CountAsync("attachment_chunks"), await services.CountAsync("data_keys"));

    [Fact]
    public async Task No_file_or_an_empty_file_is_400_and_stores_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("nf");
        var counts = await CountsAsync();
        using var empty = await app.UploadRawAsync(alice.Token, Files.Multipart([], "empty.txt"));
        Assert.Equal(400, (int)empty.StatusCode);
        using var otherPart = await app.UploadRawAsync(alice.Token, Files.Multipart([1, 2, 3], "x.bin", part: "notfile"));
        Assert.Equal(400, (int)otherPart.StatusCode);
        using var json = await app.UploadRawAsync(alice.Token, new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.True((int)json.StatusCode is 400 or 415, $"{json.StatusCode}");
        Assert.StartsWith("application/problem+json", json.Content.Headers.ContentType?.ToString());
        using var anonymous = await app.UploadRawAsync("", Files.Multipart([1], "x"));
        Assert.Equal(401, (int)anonymous.StatusCode);
        // Bodies that end before their closing boundary: in the file, in its headers, in a skipped part, at once.
        foreach (var cut in new[]
        {
            "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello",
            "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n",
            "--XX\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nskipped",
            "garbage",
        })
        {
            var content = new ByteArrayContent(Encoding.UTF8.GetBytes(cut));
            content.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=XX");
            using var truncated = await app.UploadRawAsync(alice.Token, content);
            Assert.Equal(400, (int)truncated.StatusCode);
            Assert.Equal("Unreadable upload", (await truncated.Content.ReadAsStringAsync()).Split("\"title\":\"")[1].Split('"')[0]);
        }
        Assert.Equal(counts, await CountsAsync());
    }

    [Fact]
    public async Task With_attachments_a_body_may_be_empty_but_not_null_nor_broken_text()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("an");
        var bob = await app.MemberAsync("ao");
        var direct = (await app.DirectAsync(alice, bob)).Id();
        var id = (await app.UploadAsync(alice, Files.Random(10, 31))).Id();
        foreach (var body in new[] { "null", "\"\\u001b[2J\"", "\"\\ud800\"", "\"\\u0000\"" })
        {
            var refused = await app.PostRawAsync("/api/messages", $$"""{"conversationId":"{{direct}}","body":{{body}},"attachments":["{{id}}"]}""", alice.Token, 400);
            await refused.ProblemAsync(400);
        }
        Assert.Empty(await app.HistoryAsync(alice, direct));
        // Nothing visible is fine beside a file: the file is the message.
        var sent = await app.PostRawAsync("/api/messages", $$"""{"conversationId":"{{direct}}","body":"\u200b","attachments":["{{id}}"]}""", alice.Token, 201);
        Assert.Equal(id, (await sent.JsonAsync())["attachments"]![0]!.Id());
    }

    [Fact]
    public async Task Two_files_in_one_upload_are_400_and_store_neither_and_what_follows_the_file_is_read_too()
    {
        // The second file was dropped without a word, the client told 201 for the first alone.
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("tf");
        static ByteArrayContent Body(string text)
        {
            var content = new ByteArrayContent(Encoding.UTF8.GetBytes(text));
            content.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=XX");
            return content;
        }
        static string Title(string problem) => problem.Split("\"title\":\"")[1].Split('"')[0];
        const string first = "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nfirst\r\n";
        var counts = await CountsAsync();
        using (var two = await app.UploadRawAsync(alice.Token, Body(first + "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.txt\"\r\n\r\nsecond\r\n--XX--\r\n")))
        {
            Assert.Equal(400, (int)two.StatusCode);
            Assert.StartsWith("application/problem+json", two.Content.Headers.ContentType?.ToString());
            Assert.Equal("More than one file", Title(await two.Content.ReadAsStringAsync()));
        }
        // A body cut short after the file, in a part that follows it.
        using (var cut = await app.UploadRawAsync(alice.Token, Body(first + "--XX\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nunfini")))
        {
            Assert.Equal(400, (int)cut.StatusCode);
            Assert.Equal("Unreadable upload", Title(await cut.Content.ReadAsStringAsync()));
        }
        Assert.Equal(counts, await CountsAsync());
        // Other parts, before or after the file, are skipped as before.
        using var withNote = await app.UploadRawAsync(alice.Token,
            Body("--XX\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nbefore\r\n" + first + "--XX\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nafter\r\n--XX--\r\n"));
        Assert.Equal(201, (int)withNote.StatusCode);
        var id = System.Text.Json.Nodes.JsonNode.Parse(await withNote.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        Assert.Equal("first"u8.ToArray(), (await app.DownloadAsync(alice.Token, id)).Bytes);
    }

    [Fact]
    public async Task Ranges_at_chunk_edges_decrypt_exactly_the_bytes_asked_for()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("rg");
        var size = 3 * C + 100;
        var bytes = Files.Random(size, 3);
        var id = (await app.UploadAsync(alice, bytes)).Id();
        (string Header, int Start, int End)[] cases =
        [
            ("bytes=0-0", 0, 0),
            ($"bytes={C - 1}-{C}", C - 1, C),
            ($"bytes={C}-{2 * C - 1}", C, 2 * C - 1),
            ($"bytes={C}-", C, size - 1),
            ($"bytes={3 * C}-", 3 * C, size - 1),
            ($"bytes={2 * C - 1}-{3 * C}", 2 * C - 1, 3 * C),
            ("bytes=-1", size - 1, size - 1),
            ($"bytes=-{C + 1}", size - C - 1, size - 1),
            ($"bytes=-{size + 50}", 0, size - 1),
            ($"bytes=5-{size + 1000}", 5, size - 1),
        ];
        foreach (var (header, start, end) in cases)
        {
            var part = await app.DownloadAsync(alice.Token, id, header);
            Assert.True(206 == part.Status, header);
            Assert.False(part.Failed, header);
            Assert.Equal(bytes[start..(end + 1)], part.Bytes);
            Assert.Equal($"bytes {start}-{end}/{size}", part.Response!.Content.Headers.ContentRange?.ToString());
        }
        foreach (var unsatisfiable in new[] { $"bytes={size}-", $"bytes={size + 10}-{size + 20}", "bytes=-0" })
        {
            var refused = await app.DownloadAsync(alice.Token, id, unsatisfiable);
            Assert.Equal(416, refused.Status);
            Assert.Equal($"bytes */{size}", refused.Response!.Content.Headers.ContentRange?.ToString());
        }
        // If-Range (RFC 9110 §13.1.5): the range only of the representation named, strongly.
        var etag = (await app.DownloadAsync(alice.Token, id)).Response!.Headers.ETag!.ToString();
        var same = await app.DownloadAsync(alice.Token, id, "bytes=0-0", headers: ("If-Range", etag));
        Assert.Equal(206, same.Status);
        Assert.Equal(bytes[..1], same.Bytes);
        foreach (var other in new[] { "\"another\"", "W/" + etag, "Sat, 01 Jan 2000 00:00:00 GMT" })
        {
            var whole = await app.DownloadAsync(alice.Token, id, "bytes=0-0", headers: ("If-Range", other));
            Assert.Equal(200, whole.Status);
            Assert.Equal(bytes, whole.Bytes);
        }
        // If-None-Match (§13.1.2): the client's copy is current, weakly compared; nothing is sent.
        foreach (var current in new[] { etag, "W/" + etag, $"\"x\", {etag}", "*" })
        {
            var notModified = await app.DownloadAsync(alice.Token, id, headers: ("If-None-Match", current));
            Assert.Equal(304, notModified.Status);
            Assert.Empty(notModified.Bytes);
            Assert.Equal(etag, notModified.Response!.Headers.ETag!.ToString());
        }
        Assert.Equal(200, (await app.DownloadAsync(alice.Token, id, headers: ("If-None-Match", "\"x\""))).Status);
        // Not the uploader's nor a member's: the 404 whatever the tag.
        var stranger = await app.MemberAsync("rh");
        Assert.Equal(404, (await app.DownloadAsync(stranger.Token, id, headers: ("If-None-Match", "*"))).Status);
        // Several ranges or a malformed one: the whole file, as RFC 9110 allows.
        foreach (var ignored in new[] { "bytes=0-1,5-6", "bytes=abc", "items=0-1", "bytes=9-3" })
        {
            var whole = await app.DownloadAsync(alice.Token, id, ignored);
            Assert.Equal(200, whole.Status);
            Assert.Equal(bytes, whole.Bytes);
        }
    }

    public enum Tampering { FlippedByte, DeletedLastChunk, TruncatedSize, Reordered, SwappedFromOtherFile, FlippedLastByte }

    [Theory]
    [InlineData(Tampering.FlippedByte)]
    [InlineData(Tampering.FlippedLastByte)]
    [InlineData(Tampering.DeletedLastChunk)]
    [InlineData(Tampering.TruncatedSize)]
    [InlineData(Tampering.Reordered)]
    [InlineData(Tampering.SwappedFromOtherFile)]
    public async Task A_tampered_chunk_stops_the_download_with_an_error_logged_and_no_wrong_bytes(Tampering tampering)
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var alice = await app.MemberAsync("tp");
        var bytes = Files.Random(3 * C, 11);
        var id = (await app.UploadAsync(alice, bytes)).Id();
        var other = (await app.UploadAsync(alice, Files.Random(3 * C, 12))).Id();
        Assert.Equal(bytes, (await app.DownloadAsync(alice.Token, id)).Bytes);
        await services.SqlAsync(tampering switch
        {
            Tampering.FlippedByte => $"UPDATE attachment_chunks SET data = CONCAT(LEFT(data, 100), CHAR(ASCII(SUBSTRING(data, 101, 1)) ^ 1), SUBSTRING(data, 102)) WHERE attachment_id = {id} AND idx = 1",
            Tampering.FlippedLastByte => $"UPDATE attachment_chunks SET data = CONCAT(LEFT(data, LENGTH(data) - 1), CHAR(ASCII(RIGHT(data, 1)) ^ 128)) WHERE attachment_id = {id} AND idx = 2",
            Tampering.DeletedLastChunk => $"DELETE FROM attachment_chunks WHERE attachment_id = {id} AND idx = 2",
            Tampering.TruncatedSize => $"DELETE FROM attachment_chunks WHERE attachment_id = {id} AND idx = 2; UPDATE attachments SET size = {2 * C} WHERE id = {id}",
            Tampering.Reordered => $"""
                UPDATE attachment_chunks SET idx = 99 WHERE attachment_id = {id} AND idx = 0;
                UPDATE attachment_chunks SET idx = 0 WHERE attachment_id = {id} AND idx = 1;
                UPDATE attachment_chunks SET idx = 1 WHERE attachment_id = {id} AND idx = 99;
                """,
            Tampering.SwappedFromOtherFile => $"UPDATE attachment_chunks a JOIN attachment_chunks b ON b.attachment_id = {other} AND b.idx = 1 SET a.data = b.data WHERE a.attachment_id = {id} AND a.idx = 1",
            _ => throw new ArgumentOutOfRangeException(nameof(tampering)),
        });
        var download = await app.DownloadAsync(alice.Token, id);
        Assert.True(download.Failed, $"{tampering}: the download completed ({download.Bytes.Length} bytes)");
        var expectedSize = tampering == Tampering.TruncatedSize ? 2 * C : 3 * C;
        Assert.True(download.Bytes.Length < expectedSize);
        // Only whole chunks that authenticated, and only from the start: never a byte of the bad chunk or after it.
        Assert.Equal(bytes[..download.Bytes.Length], download.Bytes);
        Assert.Equal(0, download.Bytes.Length % C);
        Assert.Contains(logs.Lines, l => l.StartsWith("Error") && l.Contains($"Attachment {id}") && l.Contains("download aborted"));
        // A range that stays in chunks before the damage still reads; one that reaches it fails too.
        if (tampering is Tampering.DeletedLastChunk or Tampering.FlippedByte or Tampering.FlippedLastByte or Tampering.SwappedFromOtherFile)
            Assert.Equal(bytes[..10], (await app.DownloadAsync(alice.Token, id, "bytes=0-9")).Bytes);
        Assert.True((await app.DownloadAsync(alice.Token, id, $"bytes={2 * C - 5}-{2 * C + 5}")).Failed);
        // The other file is untouched.
        Assert.False((await app.DownloadAsync(alice.Token, other)).Failed);
    }

    [Fact]
    public async Task Tampered_metadata_or_a_lost_key_make_the_attachment_unreadable()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var alice = await app.MemberAsync("tm");
        var id = (await app.UploadAsync(alice, Files.Random(100, 1))).Id();
        await services.SqlAsync($"UPDATE attachments SET meta = CONCAT(LEFT(meta, 3), CHAR(ASCII(SUBSTRING(meta, 4, 1)) ^ 1), SUBSTRING(meta, 5)) WHERE id = {id}");
        Assert.Equal(404, (await app.DownloadAsync(alice.Token, id)).Status);
        Assert.Contains(logs.Lines, l => l.StartsWith("Error") && l.Contains($"Attachment {id} cannot be decrypted"));
    }

    [Fact]
    public async Task Access_follows_membership_uploader_before_sending_members_after_everyone_else_404()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("aa");
        var bob = await app.MemberAsync("ab");
        var carol = await app.MemberAsync("ac");
        var dave = await app.MemberAsync("ad");
        var bytes = Files.Random(C + 5, 21);
        var upload = await app.UploadAsync(alice, bytes, "plan.bin");
        var id = upload.Id();
        Assert.Equal(200, (await app.DownloadAsync(alice.Token, id)).Status);
        Assert.Equal(404, (await app.DownloadAsync(bob.Token, id)).Status);

        var group = await app.GroupAsync(alice, "files", bob, dave);
        var sent = await app.SendWithAsync(alice, group.Id(), "", id);
        Assert.Equal("", sent["body"].Str());
        Assert.Equal(upload.ToJsonString(), sent["attachments"]![0]!.ToJsonString());
        Assert.False(sent["deleted"]!.GetValue<bool>());
        Assert.True(sent.ContainsKey("editedAt") && sent["editedAt"] is null);
        foreach (var member in new[] { alice, bob, dave })
            Assert.Equal(bytes, (await app.DownloadAsync(member.Token, id)).Bytes);
        var stranger = await app.DownloadAsync(carol.Token, id);
        Assert.Equal(404, stranger.Status);
        Assert.StartsWith("application/problem+json", stranger.Response!.Content.Headers.ContentType?.ToString());
        Assert.Equal(404, (await app.DownloadAsync(carol.Token, "99999999")).Status);
        Assert.Equal(404, (await app.DownloadAsync(carol.Token, "abc")).Status);

        // Removed from the group: 404 from then on.
        await services.SqlAsync($"DELETE FROM conversation_members WHERE conversation_id = {group.Id()} AND user_id = (SELECT id FROM users WHERE username = '{dave.Name}')");
        Assert.Equal(404, (await app.DownloadAsync(dave.Token, id)).Status);
        Assert.Equal(200, (await app.DownloadAsync(bob.Token, id)).Status);

        // The message shape everywhere: history, the inbox's last message.
        var history = await app.HistoryAsync(bob, group.Id());
        Assert.Equal(upload.ToJsonString(), history[^1]["attachments"]![0]!.ToJsonString());
        var entry = await app.InboxEntryAsync(bob, group.Id());
        Assert.Equal(id, entry!["lastMessage"]!["attachments"]![0]!.Id());
        var plain = await app.SendAsync(alice, group.Id(), "no files");
        Assert.Empty(plain["attachments"]!.AsArray());
    }

    [Fact]
    public async Task Live_and_replayed_message_events_carry_the_attachments()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("la");
        var bob = await app.MemberAsync("lb");
        var group = await app.GroupAsync(alice, "live", bob);
        var upload = await app.UploadAsync(alice, [0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 2], "anim.gif");
        Assert.Equal("image/gif", upload["contentType"].Str());
        await using var stream = await SseClient.OpenAsync(app, bob.Token);
        var sent = await app.SendWithAsync(alice, group.Id(), "look", upload.Id());
        SseEvent? live;
        do live = await stream.NextAsync(); while (live is not null && live.Event != "message");
        Assert.NotNull(live);
        Chat.SameJson(sent, JsonNode.Parse(live!.Data)!.AsObject(), "live event");
        await using var replay = await SseClient.OpenAsync(app, bob.Token, (long.Parse(live.Id!) - 1).ToString());
        var again = await replay.NextAsync();
        Assert.Equal("message", again!.Event);
        Chat.SameJson(sent, JsonNode.Parse(again.Data)!.AsObject(), "replayed event");
        Assert.Equal(upload.ToJsonString(), JsonNode.Parse(again.Data)!["attachments"]![0]!.ToJsonString());
    }

    [Fact]
    public async Task An_attachment_is_sent_once_and_only_by_its_uploader()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("sa");
        var bob = await app.MemberAsync("sb");
        var group = await app.GroupAsync(alice, "once", bob);
        var id = (await app.UploadAsync(alice, [1, 2, 3])).Id();
        var bobs = (await app.UploadAsync(bob, [4, 5, 6])).Id();
        var refused = await app.PostAsync("/api/messages", new { conversationId = group.Id(), body = "", attachments = new[] { bobs } }, alice.Token, 400);
        await refused.ProblemAsync(400);
        await app.SendWithAsync(alice, group.Id(), "first", id);
        await (await app.PostAsync("/api/messages", new { conversationId = group.Id(), body = "again", attachments = new[] { id } }, alice.Token, 400)).ProblemAsync(400);
        await app.PostAsync("/api/messages", new { conversationId = group.Id(), body = "x", attachments = new[] { "abc" } }, alice.Token, 400);
        await app.PostAsync("/api/messages", new { conversationId = group.Id(), body = "", attachments = Array.Empty<string>() }, alice.Token, 400);
        // One attachment named twice, in one spelling or two (ids compare as numbers): 400, and it stays unsent.
        var twice = (await app.UploadAsync(alice, [8])).Id();
        foreach (var names in new[] { new[] { twice, twice }, new[] { twice, "0" + twice } })
        {
            var named = await (await app.PostAsync("/api/messages", new { conversationId = group.Id(), body = "x", attachments = names }, alice.Token, 400)).ProblemAsync(400);
            Assert.Equal("Each attachment may be named once.", named["detail"].Str());
        }
        await app.SendWithAsync(alice, group.Id(), "", twice);
        var eleven = new List<string>();
        for (var i = 0; i < 11; i++) eleven.Add((await app.UploadAsync(alice, [(byte)i])).Id());
        await app.PostAsync("/api/messages", new { conversationId = group.Id(), body = "", attachments = eleven }, alice.Token, 400);
        var ten = await app.SendWithAsync(alice, group.Id(), "", [.. eleven.Take(10)]);
        Assert.Equal(eleven.Take(10), ten["attachments"]!.AsArray().Select(a => a!.Id()));

        // Two sends racing for one upload: exactly one gets it.
        var contested = (await app.UploadAsync(alice, [9])).Id();
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            app.PostAsync("/api/messages", new { conversationId = group.Id(), body = "race", attachments = new[] { contested } }, alice.Token, null)));
        Assert.Equal(1, results.Count(r => r.Status() == 201));
        Assert.Equal(3, results.Count(r => r.Status() == 400));
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM attachments WHERE id = {contested} AND message_id > 0"));

        // A send that stores nothing (not a member) gives the upload back.
        var carol = await app.MemberAsync("sc");
        var theirs = await app.GroupAsync(bob, "not alice's", carol);
        var kept = (await app.UploadAsync(alice, [7])).Id();
        await app.PostAsync("/api/messages", new { conversationId = theirs.Id(), body = "", attachments = new[] { kept } }, alice.Token, 404);
        await app.SendWithAsync(alice, group.Id(), "", kept);
    }

    [Fact]
    public async Task Deleting_a_message_destroys_its_keys_and_chunks_and_leaves_a_tombstone_and_an_event()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("da");
        var bob = await app.MemberAsync("db");
        var carol = await app.MemberAsync("dc");
        var group = await app.GroupAsync(alice, "shred", bob);
        var id = (await app.UploadAsync(alice, Files.Random(2 * C + 1, 31), "secret.bin")).Id();
        var message = await app.SendWithAsync(alice, group.Id(), "with a file", id);
        var keyHex = await services.ScalarAsync($"SELECT HEX(key_id) FROM attachments WHERE id = {id}");
        var bodyKeyHex = await services.ScalarAsync($"SELECT HEX(SUBSTRING(body, 2, 16)) FROM messages WHERE id = {message.Id()}");
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id = UNHEX('{keyHex}')"));
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id = UNHEX('{bodyKeyHex}')"));

        await using var stream = await SseClient.OpenAsync(app, bob.Token);
        await app.Scenario(s => { s.Delete.Url($"/api/messages/{message.Id()}"); s.WithBearerToken(bob.Token); s.StatusCodeShouldBe(403); });
        await app.Scenario(s => { s.Delete.Url($"/api/messages/{message.Id()}"); s.WithBearerToken(carol.Token); s.StatusCodeShouldBe(404); });
        await app.Scenario(s => { s.Delete.Url("/api/messages/abc"); s.WithBearerToken(carol.Token); s.StatusCodeShouldBe(404); });
        Assert.Equal(200, (await app.DownloadAsync(bob.Token, id)).Status);
        await app.Scenario(s => { s.Delete.Url($"/api/messages/{message.Id()}"); s.WithBearerToken(alice.Token); s.StatusCodeShouldBe(204); });

        // The keys are gone (no backup can decrypt), then the chunks and the row.
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id IN (UNHEX('{keyHex}'), UNHEX('{bodyKeyHex}'))"));
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM attachment_chunks WHERE attachment_id = {id}"));
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM attachments WHERE id = {id}"));
        Assert.Equal("0", await services.ScalarAsync($"SELECT LENGTH(body) FROM messages WHERE id = {message.Id()}"));
        foreach (var member in new[] { alice, bob })
            Assert.Equal(404, (await app.DownloadAsync(member.Token, id)).Status);

        var tombstone = (await app.HistoryAsync(bob, group.Id())).Single(m => m.Id() == message.Id());
        Assert.True(tombstone["deleted"]!.GetValue<bool>());
        Assert.Null(tombstone["body"]);
        Assert.Empty(tombstone["attachments"]!.AsArray());
        Assert.Equal(alice.Name, tombstone["sender"]!["username"].Str());
        Assert.Equal(message["sentAt"].Str(), tombstone["sentAt"].Str());
        Assert.True((await app.InboxEntryAsync(bob, group.Id()))!["lastMessage"]!["deleted"]!.GetValue<bool>());

        SseEvent? live;
        do live = await stream.NextAsync(); while (live is not null && live.Event != "message.deleted");
        Assert.NotNull(live);
        var payload = JsonNode.Parse(live!.Data)!;
        Assert.Equal(message.Id(), payload["id"].Str());
        Assert.Equal(group.Id(), payload["conversationId"].Str());
        // Replayed after a reconnect too.
        var before = long.Parse(live.Id!) - 1;
        await using var replay = await SseClient.OpenAsync(app, bob.Token, before.ToString());
        var again = await replay.NextAsync();
        Assert.Equal("message.deleted", again!.Event);
        Assert.Equal(live.Data, again.Data);

        // Deleting a tombstone again changes nothing.
        await app.Scenario(s => { s.Delete.Url($"/api/messages/{message.Id()}"); s.WithBearerToken(alice.Token); s.StatusCodeShouldBe(204); });
    }

    [Fact]
    public async Task The_type_comes_from_the_bytes_and_downloads_are_never_pages()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("sn");
        byte[] png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52];
        var image = await app.UploadAsync(alice, png, "notes.txt");
        Assert.Equal("image/png", image["contentType"].Str());
        var html = await app.UploadAsync(alice, Encoding.UTF8.GetBytes("<!doctype html><script>alert(1)</script>"), "pretty.png");
        Assert.Equal("application/octet-stream", html["contentType"].Str());
        Assert.Equal("application/pdf", (await app.UploadAsync(alice, Encoding.ASCII.GetBytes("%PDF-1.7\n..."), "a.html"))["contentType"].Str());
        Assert.Equal("application/zip", (await app.UploadAsync(alice, [0x50, 0x4B, 3, 4, 0, 0], "a.svg"))["contentType"].Str());
        Assert.Equal("application/octet-stream", (await app.UploadAsync(alice, Encoding.UTF8.GetBytes("<svg xmlns='http://www.w3.org/2000/svg'/>"), "a.svg"))["contentType"].Str());

        foreach (var (id, type) in new[] { (html.Id(), "application/octet-stream"), (image.Id(), "image/png") })
        {
            var download = await app.DownloadAsync(alice.Token, id);
            var headers = download.Response!;
            Assert.Equal(type, headers.Content.Headers.ContentType?.MediaType);
            Assert.Equal("nosniff", string.Join(",", headers.Headers.GetValues("X-Content-Type-Options")));
            var csp = string.Join(",", headers.Headers.GetValues("Content-Security-Policy"));
            Assert.StartsWith("sandbox;", csp);
            Assert.Contains("default-src 'none'", csp);
            Assert.Contains("frame-ancestors 'none'", csp);
            Assert.Equal("attachment", headers.Content.Headers.ContentDisposition?.DispositionType);
            Assert.Equal("bytes", string.Join(",", headers.Headers.AcceptRanges));
        }
        // The browser route shows raster images inline (still sandboxed), never anything else.
        var preview = await app.DownloadAsync(alice.Token, image.Id(), path: "/attachments/");
        Assert.Equal("inline", preview.Response!.Content.Headers.ContentDisposition?.DispositionType);
        var previewCsp = string.Join(",", preview.Response.Headers.GetValues("Content-Security-Policy"));
        Assert.StartsWith("sandbox;", previewCsp);
        Assert.Contains("frame-ancestors 'none'", previewCsp);
        Assert.Equal("attachment", (await app.DownloadAsync(alice.Token, image.Id() + "?download=1", path: "/attachments/")).Response!.Content.Headers.ContentDisposition?.DispositionType);
        Assert.Equal("attachment", (await app.DownloadAsync(alice.Token, html.Id(), path: "/attachments/")).Response!.Content.Headers.ContentDisposition?.DispositionType);
    }

    [Theory]
    [InlineData("report.pdf", "report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf")]
    [InlineData("C:\\Users\\eve\\Desktop\\plan.docx", "plan.docx", null)]
    [InlineData("../../etc/passwd", "passwd", null)]
    [InlineData("in\u0001voice\u007f.pdf", "invoice.pdf", null)]
    [InlineData("evil\u202Etxt.exe", "eviltxt.exe", null)]
    [InlineData("...", "file", null)]
    [InlineData("  .hidden  ", "hidden", null)]
    [InlineData("héllo wörld 😀.txt", "héllo wörld 😀.txt", "attachment; filename=\"h_llo w_rld __.txt\"; filename*=UTF-8''h%C3%A9llo%20w%C3%B6rld%20%F0%9F%98%80.txt")]
    [InlineData("quote\"and;semi.txt", "quote\"and;semi.txt", "attachment; filename=\"quote_and;semi.txt\"; filename*=UTF-8''quote%22and%3Bsemi.txt")]
    public async Task File_names_are_cleaned_and_given_back_per_RFC_6266(string uploaded, string cleaned, string? disposition)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("fn");
        // The name travels in filename* (RFC 5987), as a client with non-ASCII names sends it.
        var content = Files.Multipart([1, 2, 3], null);
        var body = await content.ReadAsByteArrayAsync();
        var text = Encoding.UTF8.GetString(body).Replace("name=\"file\"", $"name=\"file\"; filename*=UTF-8''{Uri.EscapeDataString(uploaded)}");
        var upload = new ByteArrayContent(Encoding.UTF8.GetBytes(text));
        upload.Headers.ContentType = content.Headers.ContentType;
        using var response = await app.UploadRawAsync(alice.Token, upload);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(201, (int)response.StatusCode);
        Assert.Equal(cleaned, json["name"].Str());
        var download = await app.DownloadAsync(alice.Token, json.Id());
        var header = string.Join(",", download.Response!.Content.Headers.GetValues("Content-Disposition"));
        if (disposition is not null) Assert.Equal(disposition, header);
        Assert.Equal(cleaned, download.Response.Content.Headers.ContentDisposition?.FileNameStar);
    }

    [Fact]
    public async Task A_quote_a_browser_sends_as_percent_22_in_filename_is_a_quote()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("fq");
        // What Chromium and curl send for a file named say "hi".txt (the HTML standard's form encoding).
        var json = await app.UploadAsync(alice, [1, 2, 3], "say %22hi%22.txt");
        Assert.Equal("say \"hi\".txt", json["name"].Str());
    }

    [Fact]
    public async Task A_quote_escaped_with_a_backslash_in_filename_is_a_quote()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("fb");
        // What curl sends for a file named say "hi".txt: RFC 9110's quoted-string escape.
        var content = Files.Multipart([1, 2, 3], null);
        var text = Encoding.UTF8.GetString(await content.ReadAsByteArrayAsync()).Replace("name=\"file\"", "name=\"file\"; filename=\"say \\\"hi\\\".txt\"");
        var upload = new ByteArrayContent(Encoding.UTF8.GetBytes(text));
        upload.Headers.ContentType = content.Headers.ContentType;
        using var response = await app.UploadRawAsync(alice.Token, upload);
        Assert.Equal(201, (int)response.StatusCode);
        Assert.Equal("say \"hi\".txt", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["name"].Str());
    }

    [Fact]
    public void Long_names_are_cut_without_splitting_characters()
    {
        var name = string.Concat(Enumerable.Repeat("😀", 150)) + ".txt";
        var cleaned = FileNames.Clean(name);
        Assert.True(cleaned.Length <= FileNames.MaxLength);
        Assert.True(Ams.Infrastructure.Text.IsWellFormed(cleaned));
        Assert.Equal("file", FileNames.Clean(null));
        Assert.Equal("a b.txt", FileNames.Clean("dir/a b.txt"));
    }

    [Fact]
    public async Task The_plaintext_reaches_neither_MariaDB_nor_Redis()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("pt");
        var bob = await app.MemberAsync("pb");
        var marker = "PLAINTEXT-MARKER-" + Guid.NewGuid().ToString("N");
        var content = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(marker + " ", 40_000)));   // many chunks
        var upload = await app.UploadAsync(alice, content, marker + ".txt");
        var group = await app.GroupAsync(alice, "dump", bob);
        await app.SendWithAsync(alice, group.Id(), "see file", upload.Id());
        var unsent = await app.UploadAsync(alice, Encoding.UTF8.GetBytes(marker), marker + "-unsent.txt");
        Assert.Equal(Encoding.UTF8.GetBytes(marker), (await app.DownloadAsync(alice.Token, unsent.Id())).Bytes);

        var needles = new[] { marker, Convert.ToHexString(Encoding.UTF8.GetBytes(marker)), Convert.ToBase64String(Encoding.UTF8.GetBytes(marker))[..20] };
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        var tables = new List<string>();
        await using (var list = new MySqlCommand("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()", connection))
        await using (var reader = await list.ExecuteReaderAsync())
            while (await reader.ReadAsync()) tables.Add(reader.GetString(0));
        Assert.Contains("attachment_chunks", tables);
        var scanned = 0L;
        foreach (var table in tables)
        {
            await using var dump = new MySqlCommand($"SELECT * FROM `{table}`", connection);
            await using var reader = await dump.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    var value = reader.GetValue(i);
                    var text = value is byte[] raw ? Encoding.Latin1.GetString(raw) : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                    scanned += text.Length;
                    foreach (var needle in needles) Assert.DoesNotContain(needle, text, StringComparison.OrdinalIgnoreCase);
                }
        }
        Assert.True(scanned > content.Length, $"only {scanned} bytes scanned");

        await using var redis = await ConnectionMultiplexer.ConnectAsync(services.Redis.ConnectionString + ",allowAdmin=true");
        var server = redis.GetServers()[0];
        var keys = 0;
        await foreach (var key in server.KeysAsync(pattern: "*"))
        {
            keys++;
            var dumped = await redis.GetDatabase().KeyDumpAsync(key) ?? [];
            var text = Encoding.Latin1.GetString(dumped) + (string?)key;
            foreach (var needle in needles) Assert.DoesNotContain(needle, text, StringComparison.OrdinalIgnoreCase);
        }
        Assert.True(keys > 0);
    }

    [Fact]
    public async Task The_quota_is_413_and_the_upload_throttle_429_with_Retry_After()
    {
        await using var app = await services.StartAppAsync(settings:
        [
            new("Attachments:QuotaBytes", (2 * C).ToString()),
            new("Attachments:MaxUploads", "4"),
        ]);
        var alice = await app.MemberAsync("qa");
        await app.UploadAsync(alice, Files.Random(C, 1));
        var counts = await CountsAsync();
        using (var over = await app.UploadRawAsync(alice.Token, Files.Multipart(Files.Random(C + 1, 2), "over.bin")))
        {
            Assert.Equal(413, (int)over.StatusCode);
            Assert.Contains("Storage quota exceeded", await over.Content.ReadAsStringAsync());
        }
        Assert.Equal(counts, await CountsAsync());
        await app.UploadAsync(alice, Files.Random(C, 3));
        using (var full = await app.UploadRawAsync(alice.Token, Files.Multipart([1], "one.bin")))
            Assert.Equal(413, (int)full.StatusCode);
        // Four uploads used the budget: the fifth waits.
        using var throttled = await app.UploadRawAsync(alice.Token, Files.Multipart([1], "one.bin"));
        Assert.Equal(429, (int)throttled.StatusCode);
        Assert.True(int.Parse(throttled.Headers.RetryAfter!.ToString()) >= 1);
        // Someone else is not held up.
        var bob = await app.MemberAsync("qb");
        await app.UploadAsync(bob, [1]);
    }

    [Fact]
    public async Task Uploads_never_sent_expire_after_a_day()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ex");
        var bob = await app.MemberAsync("ey");
        var group = await app.GroupAsync(alice, "expiry", bob);
        var stale = (await app.UploadAsync(alice, Files.Random(C + 1, 1))).Id();
        var fresh = (await app.UploadAsync(alice, [1])).Id();
        var sent = (await app.UploadAsync(alice, [2])).Id();
        await app.SendWithAsync(alice, group.Id(), "", sent);
        var staleKey = await services.ScalarAsync($"SELECT HEX(key_id) FROM attachments WHERE id = {stale}");
        await services.SqlAsync($"UPDATE attachments SET created_at = created_at - INTERVAL 25 HOUR WHERE id IN ({stale}, {sent})");
        // Chunks of an attachment whose row is gone (an interrupted delete) go too.
        await services.SqlAsync("INSERT INTO attachment_chunks (attachment_id, idx, data) VALUES (999999999, 0, 'x')");

        var removed = await app.Services.GetRequiredService<Sweeper>().SweepAsync();
        Assert.True(removed >= 1);
        Assert.Equal(404, (await app.DownloadAsync(alice.Token, stale)).Status);
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM attachments WHERE id = {stale}"));
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM attachment_chunks WHERE attachment_id IN ({stale}, 999999999)"));
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id = UNHEX('{staleKey}')"));
        Assert.Equal(200, (await app.DownloadAsync(alice.Token, fresh)).Status);
        Assert.Equal(200, (await app.DownloadAsync(bob.Token, sent)).Status);
    }

    [Fact]
    public async Task An_expired_upload_a_send_claims_while_the_sweeper_is_at_it_stays_with_the_send()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ec");
        var claimedNow = (await app.UploadAsync(alice, [1])).Id();
        var claimedLongAgo = (await app.UploadAsync(alice, [2])).Id();
        var claimedByAnOlderNode = (await app.UploadAsync(alice, [3])).Id();
        var raced = (await app.UploadAsync(alice, [4])).Id();
        // Claims as a send makes them (message_id 0); older nodes left claimed_at empty.
        await services.SqlAsync($"""
            UPDATE attachments SET message_id = 0, claimed_at = created_at WHERE id = {claimedNow};
            UPDATE attachments SET message_id = 0, claimed_at = created_at - INTERVAL 2 HOUR WHERE id = {claimedLongAgo};
            UPDATE attachments SET message_id = 0 WHERE id = {claimedByAnOlderNode};
            UPDATE attachments SET created_at = created_at - INTERVAL 25 HOUR WHERE id IN ({claimedNow}, {claimedLongAgo}, {claimedByAnOlderNode}, {raced});
            """);
        var rawKey = await services.ScalarAsync($"SELECT HEX(key_id) FROM attachments WHERE id = {raced}");

        // The sweeper reads the expired uploads, then a send claims one before the sweeper locks it.
        var (holder, transaction) = await services.LockRowAsync("attachments", raced);
        Task<long> sweep;
        await using (holder)
        {
            sweep = app.Services.GetRequiredService<Sweeper>().SweepAsync();
            await services.WaitUntilBlockedByAsync(holder, sweep);
            await using (var claim = new MySqlCommand(
                $"UPDATE attachments SET message_id = 0, claimed_at = UTC_TIMESTAMP(3) WHERE id = {raced}", holder, transaction))
                await claim.ExecuteNonQueryAsync();
            await transaction.CommitAsync();
        }
        Assert.Equal(2, await sweep);

        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM attachments WHERE id IN ({claimedLongAgo}, {claimedByAnOlderNode})"));
        Assert.Equal("2", await services.ScalarAsync($"SELECT COUNT(*) FROM attachments WHERE id IN ({claimedNow}, {raced})"));
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id = UNHEX('{rawKey}')"));
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM attachment_chunks WHERE attachment_id = {raced}"));
    }

    [Fact]
    public async Task A_send_never_goes_out_without_an_attachment_it_names()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ek");
        var bob = await app.MemberAsync("el");
        var group = await app.GroupAsync(alice, "keyless", bob);
        var whole = (await app.UploadAsync(alice, [1])).Id();
        var keyless = (await app.UploadAsync(alice, [2])).Id();
        // Its key destroyed (as a sweep or a delete on another node does) while the row still reads as an unsent upload.
        var keyId = Convert.FromHexString(await services.ScalarAsync($"SELECT HEX(key_id) FROM attachments WHERE id = {keyless}"));
        await services.SqlAsync($"DELETE k FROM data_keys k JOIN attachments a ON a.key_id = k.id WHERE a.id = {keyless}");
        app.Services.GetRequiredService<Ams.Infrastructure.Crypto.Envelope>().Forget([keyId]);

        var refused = await app.Scenario(s =>
        {
            s.Post.Json(new { conversationId = group.Id(), body = "both", attachments = new[] { whole, keyless } }).ToUrl("/api/messages");
            s.WithRequestHeader("Authorization", $"Bearer {alice.Token}");
            s.StatusCodeShouldBe(400);
        });
        Assert.Contains("Attachment not available", await refused.ReadAsTextAsync());
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM messages WHERE conversation_id = {group.Id()} AND sender_id = {await services.UserIdAsync(alice.Name)}"));
        // Nothing stays claimed: the whole one can still be sent.
        var sent = await app.SendWithAsync(alice, group.Id(), "one", whole);
        Assert.Equal(whole, sent["attachments"]![0]!["id"].Str());
    }

    [Fact]
    public async Task An_upload_removed_as_interrupted_before_its_last_byte_answers_408_and_leaves_nothing()
    {
        var app = await services.AppAsync();
        var (upload, id, resume) = await PausedUploadAsync(app, await app.MemberAsync("eu"));
        // Under way for longer than the sweeper's limit for interrupted uploads.
        await services.SqlAsync($"UPDATE attachments SET created_at = created_at - INTERVAL 2 HOUR WHERE id = {id}");
        Assert.Equal(1, await app.Services.GetRequiredService<Sweeper>().SweepAsync());
        resume();

        using var response = await upload;
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(408 == (int)response.StatusCode, $"{(int)response.StatusCode}: {text}");
        Assert.Contains("Upload took too long", text);
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM attachments WHERE id = {id}"));
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM attachment_chunks WHERE attachment_id = {id}"));
    }

    [Fact]
    public async Task An_upload_slower_than_the_unsent_lifetime_is_kept_and_that_lifetime_starts_once_it_is_complete()
    {
        await using var app = await services.StartAppAsync(settings: [new("Attachments:UnsentLifetime", "00:10:00")]);
        var (upload, id, resume) = await PausedUploadAsync(app, await app.MemberAsync("es"));
        await services.SqlAsync($"UPDATE attachments SET created_at = created_at - INTERVAL 30 MINUTE WHERE id = {id}");
        var sweeper = app.Services.GetRequiredService<Sweeper>();
        Assert.Equal(0, await sweeper.SweepAsync());
        resume();

        using var response = await upload;
        Assert.Equal(201, (int)response.StatusCode);
        Assert.Equal(0, await sweeper.SweepAsync());
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM attachments WHERE id = {id} AND state = 'ready'"));
    }

    /// <summary>An upload of three chunks and a bit, held after two until the test resumes it; the id of its row.</summary>
    async Task<(Task<HttpResponseMessage> Upload, string Id, Action Resume)> PausedUploadAsync(IAlbaHost app, Member member)
    {
        var userId = await services.UserIdAsync(member.Name);
        var paused = new PausedMultipart(Files.Multipart(Files.Random(3 * C + 17, 7), "slow.bin"), pauseAfter: 2 * C);
        var upload = app.UploadRawAsync(member.Token, paused);
        await paused.Paused.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var id = "NULL";
        for (var tries = 0; id == "NULL" && tries < 200; tries++)
        {
            id = await services.ScalarAsync($"SELECT MAX(id) FROM attachments WHERE uploader_id = {userId} AND state = 'uploading'");
            if (id == "NULL") await Task.Delay(50);
        }
        Assert.NotEqual("NULL", id);
        return (upload, id, () => paused.Resume.SetResult());
    }

    /// <summary>A body that stops after some bytes until the test resumes it.</summary>
    sealed class PausedMultipart : HttpContent
    {
        readonly ByteArrayContent whole;
        readonly int pauseAfter;

        public PausedMultipart(ByteArrayContent whole, int pauseAfter)
        {
            this.whole = whole;
            this.pauseAfter = pauseAfter;
            Headers.ContentType = whole.Headers.ContentType;
        }

        public TaskCompletionSource Paused { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Resume { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            var bytes = await whole.ReadAsByteArrayAsync();
            await stream.WriteAsync(bytes.AsMemory(0, pauseAfter));
            await stream.FlushAsync();
            Paused.SetResult();
            await Resume.Task;
            await stream.WriteAsync(bytes.AsMemory(pauseAfter));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task The_browser_composer_uploads_with_the_cookie_and_renders_previews_and_cards()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("bw");
        var bob = await app.MemberAsync("bx");
        var group = await app.GroupAsync(alice, "browser", bob);
        byte[] png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3];
        var image = (await app.UploadAsync(alice, png, "<b>pic&.png")).Id();
        var file = (await app.UploadAsync(alice, [1, 2, 3], "<i>notes.bin")).Id();
        await app.SendWithAsync(alice, group.Id(), "", image, file);
        var older = await app.Scenario(s =>
        {
            s.Get.Url($"/c/{group.Id()}/older");
            s.WithRequestHeader("Cookie", $"ams_session={bob.Token}");
        });
        var html = await older.ReadAsTextAsync();
        Assert.Contains($"<img src=\"/attachments/{image}\" alt=\"&lt;b&gt;pic&amp;.png\"", html);
        Assert.Contains($"href=\"/attachments/{file}\" download=\"&lt;i&gt;notes.bin\"", html);
        Assert.DoesNotContain("<b>pic", html);
        Assert.Contains("3 B · application/octet-stream", html);

        // A cookie upload needs the page's anti-forgery token.
        using var client = app.Server.CreateClient();
        using var noToken = new HttpRequestMessage(HttpMethod.Post, "/api/attachments") { Content = Files.Multipart([1], "a.bin") };
        noToken.Headers.Add("Cookie", $"ams_session={alice.Token}");
        Assert.Equal(403, (int)(await client.SendAsync(noToken)).StatusCode);
        using var inForm = new HttpRequestMessage(HttpMethod.Post, "/api/attachments");
        var page = await app.Scenario(s => { s.Get.Url("/c/new"); s.WithRequestHeader("Cookie", $"ams_session={alice.Token}"); });
        var csrf = System.Text.RegularExpressions.Regex.Match(await page.ReadAsTextAsync(), "name=\"_csrf\" value=\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(csrf);
        // The token only counts in the header: the upload's body is never read as a form.
        var body = Encoding.UTF8.GetString(await Files.Multipart([1], "a.bin").ReadAsByteArrayAsync());
        body = body.Replace("--ams-test-boundary\r\n", $"--ams-test-boundary\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n--ams-test-boundary\r\n", StringComparison.Ordinal);
        inForm.Content = new StringContent(body);
        inForm.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("multipart/form-data; boundary=ams-test-boundary");
        inForm.Headers.Add("Cookie", $"ams_session={alice.Token}");
        Assert.Equal(403, (int)(await client.SendAsync(inForm)).StatusCode);
        using var withToken = new HttpRequestMessage(HttpMethod.Post, "/api/attachments") { Content = Files.Multipart([1, 2], "a.bin") };
        withToken.Headers.Add("Cookie", $"ams_session={alice.Token}");
        withToken.Headers.Add("X-CSRF-Token", csrf);
        Assert.Equal(201, (int)(await client.SendAsync(withToken)).StatusCode);
    }
}

static class AttachmentSends
{
    /// <summary>POST /api/messages with attachments; expects 201.</summary>
    public static async Task<JsonObject> SendWithAsync(this IAlbaHost app, Member sender, string conversationId, string body, params string[] attachments)
    {
        var result = await app.PostAsync("/api/messages", new { conversationId, body, attachments }, sender.Token, null);
        var text = await result.ReadAsTextAsync();
        Assert.True(result.Status() == 201, $"send with attachments: expected 201, got {result.Status()}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }
}
