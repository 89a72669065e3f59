using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Net.Http.Headers;

namespace Ams.Infrastructure;

/// <summary>
/// wwwroot, with each file sent as the publish compressed it to a browser that accepts that: the
/// SDK writes <c>app.js.br</c> and <c>app.js.gz</c> beside <c>app.js</c>, and the scripts and styles
/// are 95 KB as they are, 26 KB as brotli. A file with no compressed sibling (a build that was not
/// published) goes as it is. Nothing is compressed per request, and no response that carries user
/// data is compressed at all (its length would tell a guesser when a guess matched it).
/// </summary>
public static class StaticFiles
{
    // In order of preference, when the client likes them equally.
    static readonly (string Name, string Suffix)[] Encodings = [("br", ".br"), ("gzip", ".gz")];
    static readonly object Encoded = new();

    public static IApplicationBuilder UsePrecompressedStaticFiles(this WebApplication app)
    {
        var files = app.Environment.WebRootFileProvider;
        var types = new FileExtensionContentTypeProvider();
        // The compressed siblings must be servable; a request for one by name gets its bytes as they are.
        types.Mappings[".br"] = "application/x-brotli";
        app.Use((http, next) =>
        {
            // A file takes GET and HEAD only; the static file middleware passed anything else on, to a 404.
            if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method) && http.Request.Path.Value is { } file
                && types.TryGetContentType(file, out _) && files.GetFileInfo(file).Exists)
            {
                http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                http.Response.Headers.Allow = "GET, HEAD";
                return Task.CompletedTask;
            }
            if (HttpMethods.IsGet(http.Request.Method) && http.Request.Path.Value is { } path && !path.EndsWith(".br", StringComparison.Ordinal)
                && !path.EndsWith(".gz", StringComparison.Ordinal) && types.TryGetContentType(path, out var type) && files.GetFileInfo(path).Exists)
            {
                http.Response.Headers.Vary = HeaderNames.AcceptEncoding;
                // A range goes from the file as it is: browsers ask none for scripts and styles, and a
                // range of the compressed bytes that cannot be satisfied was answered as an empty
                // gzip body labelled with the script's type, not as a problem.
                if (!http.Request.Headers.ContainsKey(HeaderNames.Range) && Preferred(http.Request, encoding => files.GetFileInfo(path + encoding.Suffix).Exists) is { } chosen)
                {
                    http.Request.Path = path + chosen.Suffix;
                    http.Items[Encoded] = (type, chosen.Name);
                }
            }
            return next(http);
        });
        return app.UseStaticFiles(new StaticFileOptions
        {
            ContentTypeProvider = types,
            OnPrepareResponse = f =>
            {
                var headers = f.Context.Response.Headers;
                headers.CacheControl = "public, max-age=3600";
                if (f.Context.Items[Encoded] is (string type, string encoding))
                {
                    headers.ContentType = type;
                    headers.ContentEncoding = encoding;
                }
            },
        });
    }

    /// <summary>The encoding with a sibling file that the client rates highest (RFC 9110 §12.5.3), or null for the file as it is.</summary>
    static (string Name, string Suffix)? Preferred(HttpRequest request, Func<(string Name, string Suffix), bool> available)
    {
        var accepted = request.GetTypedHeaders().AcceptEncoding;
        if (accepted.Count == 0) return null;
        (string Name, string Suffix)? best = null;
        var bestQuality = 0.0;
        foreach (var encoding in Encodings)
        {
            var quality = Quality(accepted, encoding.Name);
            if (quality > bestQuality && available(encoding)) (best, bestQuality) = (encoding, quality);
        }
        return best;
    }

    static double Quality(IList<StringWithQualityHeaderValue> accepted, string encoding)
    {
        double? wildcard = null;
        foreach (var value in accepted)
        {
            if (value.Value.Equals(encoding, StringComparison.OrdinalIgnoreCase)) return value.Quality ?? 1;
            if (value.Value.Equals("*", StringComparison.Ordinal)) wildcard = value.Quality ?? 1;
        }
        return wildcard ?? 0;
    }
}
