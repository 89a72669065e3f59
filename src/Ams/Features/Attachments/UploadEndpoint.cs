using System.Buffers;
using System.Security.Cryptography;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using MySqlConnector;

namespace Ams.Features.Attachments;

/// <summary>
/// <c>POST /api/attachments</c>: the <c>file</c> part of a multipart body, read in chunks as it
/// arrives, each chunk sealed (<see cref="ChunkCipher"/>) and stored before the next is read, the
/// SHA-256 and the content type taken on the way. Memory per upload is a few chunk buffers
/// whatever the file's size; the plaintext is never written anywhere. An upload that fails, is
/// too large or over the quota leaves nothing behind: its key, row and chunks are deleted.
/// </summary>
public sealed class UploadEndpoint(MariaDb db, Envelope envelope, IChunkStore store, AttachmentOptions options,
    RedisCircuit redis, TimeProvider time, ILogger<UploadEndpoint> logger) : EndpointWithoutRequest<AttachmentView>
{
    // Room for the multipart framing and other parts around the file.
    const long FramingAllowance = 64 * 1024;
    const string Usage = "Send multipart/form-data with one part named 'file' holding the file.";

    public override void Configure()
    {
        Post("/api/attachments");
        AllowFileUploads(dontAutoBindFormData: true);
        Options(b => b.WithMetadata(new StreamedBody()));
        ApiDocs.Document(Definition, "Upload a file to attach to a message",
            b => b.Produces<AttachmentView>(StatusCodes.Status201Created).WithMetadata(new ApiFileUpload("file", "the file: its name and bytes"))
                .ResponseHeader(StatusCodes.Status201Created, "Location", "/api/attachments/{id}: the file (its uploader may read it before it is sent)"),
            400, 408, 413, 429);
    }

    abstract record Outcome;
    sealed record Stored(long Id, AttachmentView View) : Outcome;
    sealed record Refused(int Status, string Title, string Detail) : Outcome;

    public override async Task HandleAsync(CancellationToken ct)
    {
        var me = User.UserId();
        var allowance = options.MaxBytes + FramingAllowance;
        if (HttpContext.Request.ContentLength > allowance)
        {
            await TooLargeAsync();
            return;
        }
        if (HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = allowance;
        if (await ConversationLimits.TryAsync(HttpContext, redis, "uploads", me, options.MaxUploads, options.UploadWindow) is { } wait)
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status429TooManyRequests, "Too many uploads", "Wait before uploading again.", wait);
            return;
        }
        if (!MediaTypeHeaderValue.TryParse(HttpContext.Request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is not { Length: > 0 and <= 70 } boundary)
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status400BadRequest, "No file", Usage);
            return;
        }
        Outcome outcome;
        try
        {
            outcome = await ReceiveAsync(me, boundary, allowance, ct);
        }
        catch (Exception e) when (e is BadHttpRequestException or InvalidDataException && !HttpContext.Response.HasStarted)
        {
            // A malformed multipart body, or a body past the server's limit.
            var status = e is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status400BadRequest;
            outcome = status == StatusCodes.Status413PayloadTooLarge
                ? new Refused(status, "Attachment too large", TooLargeDetail)
                : new Refused(StatusCodes.Status400BadRequest, "Unreadable upload", Usage);
        }
        switch (outcome)
        {
            case Stored stored:
                HttpContext.Response.Headers.Location = $"/api/attachments/{stored.View.Id}";
                await Send.ResponseAsync(stored.View, StatusCodes.Status201Created, ct);
                break;
            case Refused refused:
                await Problem.WriteAsync(HttpContext, refused.Status, refused.Title, refused.Detail);
                break;
        }
    }

    string TooLargeDetail => $"Attachments are limited to {options.MaxBytes} bytes.";

    Task TooLargeAsync() => Problem.WriteAsync(HttpContext, StatusCodes.Status413PayloadTooLarge, "Attachment too large", TooLargeDetail);

    async Task<Outcome> ReceiveAsync(long me, string boundary, long allowance, CancellationToken ct)
    {
        var reader = new MultipartReader(boundary, HttpContext.Request.Body) { HeadersCountLimit = 16, HeadersLengthLimit = 16 * 1024 };
        while (await Reading(() => reader.ReadNextSectionAsync(ct)) is { } section)
        {
            if (FileOf(section) is not { } disposition)
            {
                await SkipAsync(section, ct);
                continue;
            }
            var name = FileNames.Clean(disposition.FileNameStar.HasValue ? disposition.FileNameStar.Value
                : FileNames.FromFormEncoding(HeaderUtilities.UnescapeAsQuotedString(disposition.FileName).Value));
            var outcome = await StoreAsync(me, name, section.Body, ct);
            if (outcome is not Stored stored) return outcome;
            // The rest of the body is read too: a second file would otherwise be dropped without a
            // word (the client told 201), and a body cut short after the file is as unreadable as one
            // cut in it. Either way the file stored is discarded.
            try
            {
                while (await Reading(() => reader.ReadNextSectionAsync(ct)) is { } more)
                {
                    if (FileOf(more) is not null)
                    {
                        await DiscardAsync(stored.Id);
                        return new Refused(StatusCodes.Status400BadRequest, "More than one file", "An upload holds one file; upload each file on its own.");
                    }
                    await SkipAsync(more, ct);
                }
            }
            catch
            {
                await DiscardAsync(stored.Id);
                throw;
            }
            return stored;
        }
        return new Refused(StatusCodes.Status400BadRequest, "No file", Usage);
    }

    static ContentDispositionHeaderValue? FileOf(Microsoft.AspNetCore.WebUtilities.MultipartSection section) =>
        ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
        && disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase)
        && HeaderUtilities.RemoveQuotes(disposition.Name).Equals("file", StringComparison.Ordinal)
            ? disposition : null;

    // Another part: skipped (the server's limit still applies).
    static Task SkipAsync(Microsoft.AspNetCore.WebUtilities.MultipartSection section, CancellationToken ct) =>
        Reading(async () => { await section.Body.CopyToAsync(Stream.Null, ct); return 0; });

    async Task<Outcome> StoreAsync(long me, string name, Stream body, CancellationToken ct)
    {
        long remaining;
        await using (var connection = await db.OpenConnectionAsync(ct))
            remaining = options.QuotaBytes - await Sql.UsedBytesAsync(connection, me);
        if (remaining <= 0) return OverQuota();

        var (dataKey, key) = envelope.MintKey();
        var prefix = RandomNumberGenerator.GetBytes(ChunkCipher.PrefixSize);
        long id;
        await using (var connection = await db.OpenConnectionAsync(ct))
            id = await Sql.BeginAsync(connection, me, key, prefix, time.GetUtcNow().UtcDateTime);
        var current = ArrayPool<byte>.Shared.Rent(ChunkCipher.ChunkSize);
        var next = ArrayPool<byte>.Shared.Rent(ChunkCipher.ChunkSize);
        var sealedChunk = ArrayPool<byte>.Shared.Rent(ChunkCipher.ChunkSize + ChunkCipher.TagSize);
        var keep = false;
        try
        {
            using var aes = new AesGcm(dataKey, ChunkCipher.TagSize);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var filled = await FillAsync(body, current, ct);
            if (filled == 0) return new Refused(StatusCodes.Status400BadRequest, "Empty file", "An attachment needs at least one byte.");
            var contentType = Sniffer.ContentType(current.AsSpan(0, filled));
            long total = filled;
            for (long index = 0; ; index++)
            {
                if (total > options.MaxBytes) return new Refused(StatusCodes.Status413PayloadTooLarge, "Attachment too large", TooLargeDetail);
                if (total > remaining) return OverQuota();
                hash.AppendData(current, 0, filled);
                // Read ahead: a chunk is sealed as the last one only when nothing follows it.
                var following = filled == ChunkCipher.ChunkSize ? await FillAsync(body, next, ct) : 0;
                ChunkCipher.Seal(aes, prefix, id, key.Id, index, following == 0, current.AsSpan(0, filled), sealedChunk);
                await store.WriteAsync(id, index, new ArraySegment<byte>(sealedChunk, 0, filled + ChunkCipher.TagSize), ct);
                if (following == 0) break;
                (current, next) = (next, current);
                filled = following;
                total += following;
            }
            var sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
            var meta = ChunkCipher.SealMeta(aes, prefix, id, key.Id, new ChunkCipher.Meta(name, contentType, sha256));
            await using (var connection = await db.OpenConnectionAsync(ct))
                if (!await Sql.CompleteAsync(connection, id, total, meta, time.GetUtcNow().UtcDateTime))
                    return new Refused(StatusCodes.Status408RequestTimeout, "Upload took too long",
                        $"An upload must arrive within {Sweeper.InterruptedAfter.TotalHours:0} hour; this one was removed as interrupted. Nothing was stored.");
            keep = true;
            logger.LogInformation("Attachment {Id} stored: {Size} bytes in {Chunks} chunks", id, total, ChunkCipher.ChunkCount(total));
            return new Stored(id, new AttachmentView(Ids.Of(id), name, total, contentType, sha256));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(current);
            CryptographicOperations.ZeroMemory(next);
            ArrayPool<byte>.Shared.Return(current);
            ArrayPool<byte>.Shared.Return(next);
            ArrayPool<byte>.Shared.Return(sealedChunk);
            if (!keep) await DiscardAsync(id);
        }
    }

    Refused OverQuota() => new(StatusCodes.Status413PayloadTooLarge, "Storage quota exceeded",
        $"Your attachments may occupy at most {options.QuotaBytes} bytes together. Unsent uploads expire after {options.UnsentLifetime.TotalHours:0} hours; deleting a message frees its attachments.");

    /// <summary>Nothing half-stored is left: the key, the row, then the chunks (not cancelled with the request).</summary>
    async Task DiscardAsync(long id)
    {
        try
        {
            await using var connection = await db.OpenConnectionAsync();
            envelope.Forget(await AttachmentQueries.DestroyAsync(connection, [id]));
            await store.DeleteAsync([id]);
        }
        catch (Exception e) when (e is MySqlException or TimeoutException)
        {
            logger.LogWarning("Attachment {Id} not discarded yet ({Message}); the sweeper removes it", id, e.Message);
        }
    }

    /// <summary>
    /// A read of the request's multipart body. A body that ends before its closing boundary fails
    /// as an IOException ("Unexpected end of Stream"), which the chunk store's own writes may also
    /// throw: only the body's is the client's mistake, an unreadable body (400) as the reader's own.
    /// </summary>
    static async Task<T> Reading<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (IOException e) when (e is not BadHttpRequestException)
        {
            throw new InvalidDataException("The multipart body ended before its closing boundary", e);
        }
    }

    /// <summary>Reads until the buffer's chunk is full or the part ends; how many bytes it holds.</summary>
    static async Task<int> FillAsync(Stream body, byte[] buffer, CancellationToken ct)
    {
        var filled = 0;
        while (filled < ChunkCipher.ChunkSize)
        {
            var read = await Reading(() => body.ReadAsync(buffer.AsMemory(filled, ChunkCipher.ChunkSize - filled), ct).AsTask());
            if (read == 0) break;
            filled += read;
        }
        return filled;
    }
}
