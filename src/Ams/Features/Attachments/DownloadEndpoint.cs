using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Attachments;

/// <summary>
/// <c>GET /api/attachments/{id}</c> (and <c>/attachments/{id}</c> for the browser's previews and
/// links): the original bytes, decrypted chunk by chunk as they are written out; a single
/// <c>Range</c> decrypts only the chunks it covers. A chunk that fails authentication (tampered,
/// truncated, reordered or moved from another file) stops the download: the connection is
/// aborted and the failure logged, and no byte of that chunk or after it is sent.
/// Never served as a page: sniffed type, <c>nosniff</c>, <c>Content-Security-Policy: sandbox</c>,
/// and <c>Content-Disposition: attachment</c> (inline only for raster images on the browser route).
/// </summary>
public sealed class DownloadEndpoint(MariaDb db, Envelope envelope, IChunkStore store, ILogger<DownloadEndpoint> logger)
    : EndpointWithoutRequest
{
    const string Sandbox = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; frame-ancestors 'none'";

    public override void Configure()
    {
        Get("/api/attachments/{id}", "/attachments/{id}");
        ApiDocs.Document(Definition, "Download an attachment: the original bytes",
            b => b.Produces(StatusCodes.Status200OK, typeof(Stream), "application/octet-stream")
                .Produces(StatusCodes.Status206PartialContent, typeof(Stream), "application/octet-stream")
                .Produces(StatusCodes.Status304NotModified)
                .ResponseHeader(StatusCodes.Status200OK, "Content-Type", "the type sniffed from the bytes (never the uploader's word alone); application/octet-stream when unknown")
                .ResponseHeader(StatusCodes.Status200OK, "Content-Disposition", "attachment; filename=\"ASCII fallback\"; filename*=UTF-8''the name, percent-encoded")
                .ResponseHeader(StatusCodes.Status200OK, "ETag", "the SHA-256 of the bytes, quoted")
                .ResponseHeader(StatusCodes.Status200OK, "Accept-Ranges", "bytes")
                .ResponseHeader(StatusCodes.Status200OK, "X-Content-Type-Options", "nosniff")
                .ResponseHeader(StatusCodes.Status206PartialContent, "Content-Type", "as for 200")
                .ResponseHeader(StatusCodes.Status206PartialContent, "Content-Range", "bytes start-end/size")
                .ResponseHeader(StatusCodes.Status206PartialContent, "ETag", "the SHA-256 of the whole file, quoted")
                .ResponseHeader(StatusCodes.Status304NotModified, "ETag", "the SHA-256 of the bytes, quoted")
                .ResponseHeader(StatusCodes.Status416RangeNotSatisfiable, "Content-Range", "bytes */size")
                .Header("Range", "one byte range (bytes=start-end): 206 with those bytes")
                .Header("If-Range", "the ETag the range is of: another gets the whole file (200)")
                .Header("If-None-Match", "ETags of copies the client holds: 304 when one is current"), 404, 416);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        AttachmentRow? row = null;
        if (Ids.TryParse(Route<string>("id", isRequired: false), out var id))
            await using (var connection = await db.OpenConnectionAsync(ct))
                row = await Sql.ReadableAsync(connection, User.UserId(), id);
        if (row is null)
        {
            await NotFoundAsync();
            return;
        }
        var dataKey = await envelope.KeyAsync(row.KeyId);
        using var aes = dataKey is null ? null : new AesGcm(dataKey, ChunkCipher.TagSize);
        var meta = aes is null ? null : ChunkCipher.OpenMeta(aes, row.NoncePrefix, row.Id, row.KeyId, row.Meta);
        if (aes is null || meta is null)
        {
            logger.LogError("Attachment {Id} cannot be decrypted: its data key is gone or its metadata does not authenticate", row.Id);
            await NotFoundAsync();
            return;
        }

        var response = HttpContext.Response;
        var request = HttpContext.Request;
        var etag = $"\"{meta.Sha256}\"";
        // RFC 9110 §13.1.2: the client's copy is this one (weak comparison).
        if (request.Headers.IfNoneMatch.ToString().Split(',').Select(tag => tag.Trim()).Any(tag => tag == "*" || tag == etag || tag == "W/" + etag))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            response.Headers.ETag = etag;
            response.Headers.CacheControl = "private, no-store";
            await response.StartAsync(ct);   // sent as it is: an endpoint that writes nothing would be answered 204
            return;
        }
        var size = row.Size;
        var (start, end) = (0L, size - 1);
        // §13.1.5: a range of another representation than the one named (strong comparison; no dates,
        // as no Last-Modified is sent) is ignored and the whole file sent.
        var ifRange = request.Headers.IfRange.ToString();
        switch (ParseRange(ifRange.Length == 0 || ifRange == etag ? request.Headers.Range.ToString() : "", size))
        {
            case null:
                break;
            case { Satisfiable: false }:
                response.Headers.ContentRange = $"bytes */{size.ToString(CultureInfo.InvariantCulture)}";
                await Problem.WriteAsync(HttpContext, StatusCodes.Status416RangeNotSatisfiable, "Range not satisfiable",
                    $"The attachment has {size} bytes.");
                return;
            case { } range:
                (start, end) = (range.Start, range.End);
                response.StatusCode = StatusCodes.Status206PartialContent;
                response.Headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes {start}-{end}/{size}");
                break;
        }
        var inline = !HttpContext.IsApi() && Sniffer.IsPreviewable(meta.ContentType) && !HttpContext.Request.Query.ContainsKey("download");
        SecurityHeaders.UseStricterPolicy(HttpContext, Sandbox);
        response.ContentType = meta.ContentType;
        response.Headers.ContentDisposition = FileNames.ContentDisposition(meta.Name, inline);
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.AcceptRanges = "bytes";
        response.Headers.ETag = etag;
        response.Headers.CacheControl = "private, no-store";
        response.ContentLength = end - start + 1;

        var chunkSize = row.ChunkSize;
        var last = ChunkCipher.ChunkCount(size, chunkSize) - 1;
        var sealedChunk = ArrayPool<byte>.Shared.Rent(chunkSize + ChunkCipher.TagSize);
        var plain = ArrayPool<byte>.Shared.Rent(chunkSize);
        try
        {
            for (var index = start / chunkSize; index <= end / chunkSize; index++)
            {
                var expected = (int)(index == last ? size - index * chunkSize : chunkSize);
                var length = await store.ReadAsync(row.Id, index, sealedChunk, ct);
                if (length != expected + ChunkCipher.TagSize
                    || !ChunkCipher.TryOpen(aes, row.NoncePrefix, row.Id, row.KeyId, index, index == last, sealedChunk.AsSpan(0, length), plain))
                {
                    logger.LogError("Attachment {Id}: chunk {Index} of {Count} is missing or fails authentication (tampered, truncated, reordered or moved); download aborted",
                        row.Id, index, last + 1);
                    HttpContext.Abort();
                    return;
                }
                var from = index == start / chunkSize ? (int)(start - index * chunkSize) : 0;
                var to = index == end / chunkSize ? (int)(end - index * chunkSize) + 1 : expected;
                await response.Body.WriteAsync(plain.AsMemory(from, to - from), ct);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
            ArrayPool<byte>.Shared.Return(plain);
            ArrayPool<byte>.Shared.Return(sealedChunk);
        }
    }

    Task NotFoundAsync() => Problem.WriteAsync(HttpContext, StatusCodes.Status404NotFound, "Attachment not found");

    public readonly record struct ByteRange(bool Satisfiable, long Start, long End);

    /// <summary>
    /// One <c>bytes=</c> range (RFC 9110 §14.1.2): first-last, first-, or -suffix; null when there is
    /// none or it is malformed or asks for several ranges (then the whole file is sent, as the RFC allows).
    /// </summary>
    public static ByteRange? ParseRange(string header, long size)
    {
        if (string.IsNullOrWhiteSpace(header) || !header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase)) return null;
        var spec = header["bytes=".Length..].Trim();
        if (spec.Contains(',')) return null;
        var dash = spec.IndexOf('-');
        if (dash < 0) return null;
        var (first, second) = (spec[..dash].Trim(), spec[(dash + 1)..].Trim());
        const NumberStyles Digits = NumberStyles.None;
        if (first.Length == 0)
        {
            if (!long.TryParse(second, Digits, CultureInfo.InvariantCulture, out var suffix)) return null;
            return suffix == 0 ? new ByteRange(false, 0, 0) : new ByteRange(true, Math.Max(0, size - suffix), size - 1);
        }
        if (!long.TryParse(first, Digits, CultureInfo.InvariantCulture, out var start)) return null;
        var end = size - 1;
        if (second.Length > 0)
        {
            if (!long.TryParse(second, Digits, CultureInfo.InvariantCulture, out var last) || last < start) return null;
            end = Math.Min(last, size - 1);
        }
        return start >= size ? new ByteRange(false, 0, 0) : new ByteRange(true, start, end);
    }
}
