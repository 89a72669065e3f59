using System.Globalization;
using System.Text;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http.Features;

namespace Ams.Infrastructure;

/// <summary>
/// Endpoint metadata: the endpoint streams a body larger than <see cref="RequestLimits.MaxBodyBytes"/>
/// and enforces its own limit (it raises the server's limit for its request and counts as it reads).
/// </summary>
public sealed class StreamedBody;

public static class RequestLimits
{
    public const long MaxBodyBytes = 64 * 1024;

    /// <summary>
    /// Kestrel enforces <see cref="MaxBodyBytes"/> while reading (chunked bodies included);
    /// this answers a declared oversized body before anything reads it, under any server.
    /// Not an async lambda: a pass-through returns <c>next</c>'s task instead of holding a state
    /// machine for as long as the request runs (an event stream runs for hours; see
    /// docs/benchmarks-history.md, SSE memory).
    /// </summary>
    public static IApplicationBuilder UseBodySizeLimit(this IApplicationBuilder app) => app.Use((http, next) =>
    {
        // A streamed upload enforces its own, larger limit while it reads.
        if (!(http.Request.ContentLength > MaxBodyBytes) || http.GetEndpoint()?.Metadata.GetMetadata<StreamedBody>() is not null) return next(http);
        // Kestrel reads an unread body after the answer, and drops it, only within the request's
        // limit; past it, it closed the connection under a client still sending, which then read a
        // reset instead of this 413 (curl without Expect: 2 of 10 times at 300 KB, 6 of 10 at 3 MB).
        if (http.Request.ContentLength <= DrainedUpTo && http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = http.Request.ContentLength;
            // Over HTTP/2 Kestrel ends a stream whose body is still coming with RST_STREAM (NO_ERROR)
            // after the answer, as RFC 9113 §8.1 allows, and curl 7.88 then dropped the 413 it had
            // read (8 of 8 at 1 MB): the body is read first there. A sender waiting for 100-continue
            // is answered at once instead.
            if ((HttpProtocol.IsHttp2(http.Request.Protocol) || HttpProtocol.IsHttp3(http.Request.Protocol)) && http.Request.Headers.Expect.Count == 0)
                return DrainedThenRefusedAsync(http);
        }
        return TooLargeAsync(http);
    });

    static Task TooLargeAsync(HttpContext http) => Problem.WriteAsync(http, StatusCodes.Status413PayloadTooLarge, "Request body too large",
        $"Request bodies are limited to {MaxBodyBytes / 1024} KiB.");

    static async Task DrainedThenRefusedAsync(HttpContext http)
    {
        await http.Request.Body.CopyToAsync(Stream.Null, http.RequestAborted);
        await TooLargeAsync(http);
    }

    /// <summary>The largest refused body read to its end so that its sender hears the 413: a file's size, as uploads take.</summary>
    const long DrainedUpTo = 32 * 1024 * 1024;
}

public static class UnreadableBodies
{
    const string Reason = "The request body could not be read: a form may not carry NUL characters, invalid UTF-8 (raw or " +
        "percent-encoded), a % not followed by two hex digits, a field twice, more than 1,024 fields or a field name over " +
        "2,048 characters, and a multipart body needs its boundary.";

    /// <summary>
    /// A body the form reader refuses (it throws <see cref="InvalidDataException"/> wherever the form
    /// is first read: the anti-forgery check, the binder) is the client's mistake: 400, as problem
    /// details for the API and as a page for the browser, and one log line instead of a stack trace.
    /// </summary>
    public static IApplicationBuilder UseUnreadableBodiesAsBadRequest(this IApplicationBuilder app)
    {
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Ams.Requests");
        return app.Use((http, next) =>
        {
            // Parsed once here: every check below and the form scan read it.
            var typed = Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var media);
            // FastEndpoints answers a JSON call sent without a Content-Type with a bare 415 whose
            // response has already started, so no problem body can be added afterwards.
            // Likewise one that is empty or not a media type (two Content-Type headers, a list, ";"):
            // the body would otherwise be read as no body at all.
            if (!typed && http.Request.Path.StartsWithSegments("/api")
                && http.GetEndpoint()?.Metadata.GetMetadata<Microsoft.AspNetCore.Http.Metadata.IAcceptsMetadata>() is { ContentTypes.Count: > 0 } accepts)
                return Problem.WriteAsync(http, StatusCodes.Status415UnsupportedMediaType, "Unsupported Media Type",
                    $"Send the request body as {accepts.ContentTypes[0]}.");
            // A compressed body (RFC 9110 §8.4) is not decoded here: read as it is, gzip was "not a
            // JSON object" (400) and an upload was stored compressed. RFC 7694: 415, and say what is taken.
            if (http.Request.Headers.ContentEncoding.SelectMany(codings => (codings ?? "").Split(','))
                .Any(coding => !string.Equals(coding.Trim(), "identity", StringComparison.OrdinalIgnoreCase)))
            {
                http.Response.Headers.AcceptEncoding = "identity";
                return Problem.WriteAsync(http, StatusCodes.Status415UnsupportedMediaType, "Unsupported Media Type",
                    "Request bodies are taken uncompressed: send it without Content-Encoding.");
            }
            // Kestrel decodes chunked and nothing else, and took `gzip, chunked` as chunked alone:
            // the body was read still compressed. RFC 9112 §6.1: 501 for a coding not understood.
            if (http.Request.Headers.TransferEncoding is { Count: > 0 } listed)
            {
                // Empty list elements (`chunked,`) are no coding (RFC 9110 §5.6.1), and Kestrel reads such a body as chunked.
                var codings = listed.SelectMany(codings => (codings ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
                if (codings.Any(coding => !string.Equals(coding, "chunked", StringComparison.OrdinalIgnoreCase)))
                    return Problem.WriteAsync(http, StatusCodes.Status501NotImplemented, "Transfer coding not implemented",
                        "Request bodies are taken as they are or chunked: send it without another Transfer-Encoding.");
                // Kestrel undoes one chunked: a body chunked twice (RFC 9112 §7: a sender never does) was read with the inner framing in it.
                if (codings.Count > 1)
                    return Problem.WriteAsync(http, StatusCodes.Status400BadRequest, "Malformed Transfer-Encoding",
                        "A request body is chunked once: send Transfer-Encoding: chunked a single time.");
            }
            var transcoded = false;
            if (typed && !ReadableCharset(http.Request, media!, out transcoded))
                return Problem.WriteAsync(http, StatusCodes.Status415UnsupportedMediaType, "Unsupported Media Type",
                    "The Content-Type names a charset this server cannot read: send the body in UTF-8.");
            // No body, nothing to refuse: passed through without a state machine held for the
            // request's lifetime (an event stream runs for hours; see UseBodySizeLimit).
            return http.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: false }
                ? next(http)
                : ReadableAsync(http, next, logger,
                    urlEncoded: typed && media!.MediaType.Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase), transcoded);
        });
    }

    /// <summary>
    /// ASP.NET's form reader keeps a percent escape it cannot decode as the text <c>%FF</c>, and joins
    /// a field given twice with a comma (<c>x,y</c>, a message neither value was): both were stored.
    /// A field twice is refused as in JSON (a proxy in front may read the other one). The body is
    /// read here once, as bytes, and rewound for the reader; in memory, as the form reader would
    /// have held it (a 4,000-character message in CJK is ~36 KB percent-encoded).
    /// </summary>
    static async Task CheckUrlEncodedAsync(HttpRequest request)
    {
        request.EnableBuffering(bufferThreshold: (int)RequestLimits.MaxBodyBytes + 1);
        using var copy = new MemoryStream();
        await request.Body.CopyToAsync(copy, request.HttpContext.RequestAborted);
        request.Body.Position = 0;
        if (UrlEncodedFault(copy.GetBuffer().AsSpan(0, (int)copy.Length)) is { } fault) throw new InvalidDataException(fault);
    }

    static string? UrlEncodedFault(ReadOnlySpan<byte> body)
    {
        var decoded = new byte[body.Length];
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);   // as the form reader matches them
        foreach (var range in body.Split((byte)'&'))
        {
            var pair = body[range];
            var equals = pair.IndexOf((byte)'=');
            if (equals < 0) continue;   // the form reader skips a pair without '='
            var nameLength = Decode(pair[..equals], decoded);
            if (nameLength < 0) return NotPercentEncoded;
            if (!names.Add(Encoding.UTF8.GetString(decoded, 0, nameLength))) return "A form field is given twice.";
            if (Decode(pair[(equals + 1)..], decoded) < 0) return NotPercentEncoded;
        }
        return null;

        // The length of the bytes it stands for, or -1 for a % without two hex digits or bytes that are no UTF-8.
        static int Decode(ReadOnlySpan<byte> encoded, Span<byte> into)
        {
            var length = 0;
            for (var i = 0; i < encoded.Length; i++)
            {
                if (encoded[i] != '%') into[length++] = encoded[i] == '+' ? (byte)' ' : encoded[i];
                else if (i + 2 < encoded.Length && byte.TryParse(encoded.Slice(i + 1, 2), NumberStyles.AllowHexSpecifier, null, out var escaped))
                {
                    into[length++] = escaped;
                    i += 2;
                }
                else return -1;
            }
            return Utf8.IsValid(into[..length]) ? length : -1;
        }
    }

    const string NotPercentEncoded = "A form field is not percent-encoded UTF-8.";

    /// <summary>
    /// ASP.NET's JSON reader throws (a 500) for a charset .NET has no decoder for, and for a quoted
    /// one, which RFC 9110 allows; the form reader falls back to UTF-8 by itself. So a JSON body in
    /// another charset is decoded here, strictly, and handed on as UTF-8; false means no decoder here knows it.
    /// </summary>
    static bool ReadableCharset(HttpRequest request, Microsoft.Net.Http.Headers.MediaTypeHeaderValue media, out bool transcoded)
    {
        transcoded = false;
        if (!media.Charset.HasValue || !media.SubType.EndsWith("json", StringComparison.OrdinalIgnoreCase)) return true;
        var charset = Microsoft.Net.Http.Headers.HeaderUtilities.RemoveQuotes(media.Charset);
        if (charset.Length == media.Charset.Length && charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase)) return true;
        Encoding encoding;
        try
        {
            // Strict: the reader's own decoder put U+FFFD (or ?) for what was not text in the charset
            // (a lone UTF-16 surrogate, é labelled US-ASCII) and the message was stored unlike what was sent.
            encoding = Encoding.GetEncoding(charset.ToString(), EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)   // unknown; UTF-7, which .NET refuses
        {
            return false;
        }
        if (encoding.CodePage != Encoding.UTF8.CodePage)
        {
            request.Body = Encoding.CreateTranscodingStream(request.Body, encoding, Encoding.UTF8, leaveOpen: true);
            request.HttpContext.Response.RegisterForDispose(request.Body);
            transcoded = true;
        }
        media.Charset = "utf-8";
        request.ContentType = media.ToString();
        return true;
    }

    /// <param name="urlEncoded">UTF-8 whatever charset it names: the form reader decodes escapes as UTF-8
    /// in every charset (a Latin-1 form's %E9 was stored as the text "%E9"), and browsers send UTF-8.</param>
    /// <param name="transcoded">The body is decoded from its charset here: the decoder's refusal is the client's text, not a fault further on.</param>
    static async Task ReadableAsync(HttpContext http, RequestDelegate next, ILogger logger, bool urlEncoded, bool transcoded)
    {
        try
        {
            if (urlEncoded) await CheckUrlEncodedAsync(http.Request);
            await next(http);
        }
        // A multipart form that ends before its closing boundary fails as an IOException (the
        // reader's "Unexpected end of Stream"); uploads, which also write files, tell their own.
        catch (Exception e) when (!http.Response.HasStarted && (e is InvalidDataException || e is DecoderFallbackException && transcoded
            || e is IOException and not BadHttpRequestException && http.Request.HasFormContentType
                && http.GetEndpoint()?.Metadata.GetMetadata<StreamedBody>() is null))
        {
            logger.LogInformation("Refused an unreadable {Method} {Path} body ({Message})", http.Request.Method, http.Request.Path, e.Message);
            var reason = e is DecoderFallbackException ? "The body is not text in the charset its Content-Type names." : Reason;
            http.Response.Clear();
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            if (http.Request.Path.StartsWithSegments("/api"))
            {
                await Problem.WriteAsync(http, StatusCodes.Status400BadRequest, "Unreadable request body", reason);
                return;
            }
            var page = Layout.PageOrFragment(http, "Form not accepted", Html.Of($"""
                {Layout.Errors([reason])}
                <p><a href="{http.Request.Path}">Back to the form</a></p>
                """));
            http.Response.ContentType = "text/html; charset=utf-8";
            await http.Response.WriteAsync(page, http.RequestAborted);
        }
    }
}
