using System.Globalization;
using FastEndpoints;
using Microsoft.AspNetCore.WebUtilities;

namespace Ams.Infrastructure;

/// <summary>
/// How a JSON call appears in <c>docs/openapi.json</c>: its summary, its success response and
/// every problem it can answer. Endpoint metadata only, read by nothing at run time: the tests
/// generate the document from it under the JIT (NSwag cannot run in the AOT binary) and fail when
/// the committed file differs; the binary serves that file at <c>GET /openapi.json</c>.
/// </summary>
public static class ApiDocs
{
    public const string ProblemJson = "application/problem+json";

    /// <summary>
    /// Call last in <c>Configure()</c>, after the routes and <c>AllowAnonymous()</c>. Besides the
    /// <paramref name="problems"/> the handler answers itself, the pipeline adds to every call what it
    /// can answer there: 401 (no valid session or token) unless anonymous, 403 to a personal access
    /// token on an account-security call, 413 for a body over 64 KiB (whatever the method), 503
    /// when MariaDB or Redis is unreachable, and what a body's framing gets on any call, one that
    /// takes no body included (<c>UnreadableBodies</c>): 400 (chunked twice), 415 (compressed) and
    /// 501 (a transfer coding before chunked).
    /// </summary>
    public static void Document(EndpointDefinition endpoint, string summary, Action<RouteHandlerBuilder> success, params Answer[] problems)
    {
        var route = endpoint.Routes?.FirstOrDefault(r => r.StartsWith("/api/", StringComparison.Ordinal))
            ?? throw new InvalidOperationException("Only /api/ calls are documented.");
        var statuses = new SortedSet<int>(problems.Select(p => p.Status)) { StatusCodes.Status503ServiceUnavailable };
        if (endpoint.AnonymousVerbs is null) statuses.Add(StatusCodes.Status401Unauthorized);
        if (AccessTokenScope.IsAccountSecurity(route)) statuses.Add(StatusCodes.Status403Forbidden);
        statuses.Add(StatusCodes.Status413PayloadTooLarge);   // a GET or DELETE with a body that large too
        statuses.UnionWith([StatusCodes.Status400BadRequest, StatusCodes.Status415UnsupportedMediaType, StatusCodes.Status501NotImplemented]);
        endpoint.Summary(s =>
        {
            s.Summary = summary;
            foreach (var status in statuses)
                s.Responses[status] = problems.FirstOrDefault(p => p.Status == status).Meaning ?? ReasonPhrases.GetReasonPhrase(status);
        });
        endpoint.Description(b =>
        {
            // FastEndpoints guesses 200 with the response type, 400 and 401; the call says what it does.
            b.ClearDefaultProduces();
            success(b);
            // One shape for every problem: RFC 9457 with traceId, and errors [{name, reason}] on validation failures.
            foreach (var status in statuses) b.Produces<FastEndpoints.ProblemDetails>(status, ProblemJson);
        });
    }

    /// <summary>
    /// The 503 of a call that checks a password: besides MariaDB or Redis being away, no hashing
    /// slot (or, at the sign-in throttle, no place) freed up in time.
    /// </summary>
    public static readonly Answer PasswordCheckBusy = (StatusCodes.Status503ServiceUnavailable,
        "Service Unavailable: MariaDB or Redis is unreachable, or \"Server busy\": too many password checks at once (no failed attempt is counted)");

    /// <summary>
    /// A problem a call answers, with what it means there when the reason phrase alone leaves a
    /// client guessing (a 409 is a taken name on one call and a full group on another).
    /// </summary>
    public readonly record struct Answer(int Status, string? Meaning = null)
    {
        public static implicit operator Answer(int status) => new(status);
        public static implicit operator Answer((int Status, string Meaning) answer) => new(answer.Status, answer.Meaning);
    }

    /// <summary>A query parameter the handler reads itself (no request DTO declares it).</summary>
    public static RouteHandlerBuilder Query(this RouteHandlerBuilder builder, string name, string type, string description, bool required = false,
        string? pattern = null) =>
        builder.WithMetadata(new ApiParameter("query", name, type, description, required, pattern));

    /// <summary>The page size a list call reads from <c>?limit=</c>: 1 to <paramref name="max"/>, <paramref name="byDefault"/> without it.</summary>
    public static RouteHandlerBuilder Limit(this RouteHandlerBuilder builder, int max, int byDefault) =>
        builder.WithMetadata(new ApiParameter("query", "limit", "integer", $"1..{max}, default {byDefault}", Required: false,
            Bounds: (1, max, byDefault)));

    /// <summary>
    /// An event id as <c>Last-Event-ID</c> and <c>?after=</c> take it: digits whose number is at
    /// most 2^63−1 (leading zeros too, as <c>long.TryParse</c> takes them); empty is absent
    /// (EventSource sends none before its first id). A client's validator must refuse exactly what
    /// the stream answers 400, so the bound is spelled out: any 18 digits, or 19 that stay at or
    /// below long.MaxValue's digits (below at one position, the same before it, anything after).
    /// </summary>
    public static readonly string EventIdPattern = NotAbove(long.MaxValue.ToString(CultureInfo.InvariantCulture));

    static string NotAbove(string most)
    {
        var ways = new List<string> { $"[0-9]{{0,{most.Length - 1}}}" };
        for (var i = 0; i < most.Length; i++)
            if (most[i] > '0')
                ways.Add(most[..i] + $"[0-{(char)(most[i] - 1)}]" + (most.Length - 1 - i) switch { 0 => "", 1 => "[0-9]", var n => $"[0-9]{{{n}}}" });
        ways.Add(most);
        return $"^0*({string.Join('|', ways)})$";
    }

    /// <summary>The API route needs a session or token although the endpoint allows anonymous calls for its browser twin.</summary>
    public static RouteHandlerBuilder NeedsSession(this RouteHandlerBuilder builder) => builder.WithMetadata(new ApiSessionRequired());

    /// <summary>A request header the call honours; <paramref name="pattern"/> says what a valid value looks like.</summary>
    public static RouteHandlerBuilder Header(this RouteHandlerBuilder builder, string name, string description, string? pattern = null) =>
        builder.WithMetadata(new ApiParameter("header", name, "string", description, Required: false, pattern));

    /// <summary>A header the answer with <paramref name="status"/> carries.</summary>
    public static RouteHandlerBuilder ResponseHeader(this RouteHandlerBuilder builder, int status, string name, string description) =>
        builder.WithMetadata(new ApiResponseHeader(status, name, description));
}

/// <summary>Endpoint metadata for the document: a header the answer with <paramref name="Status"/> carries.</summary>
public sealed record ApiResponseHeader(int Status, string Name, string Description);

/// <summary>Endpoint metadata for the document: a parameter outside the request DTO (<paramref name="In"/>: query or header).</summary>
public sealed record ApiParameter(string In, string Name, string Type, string Description, bool Required, string? Pattern = null,
    (int Minimum, int Maximum, int Default)? Bounds = null);

/// <summary>Endpoint metadata for the document: the call takes <c>multipart/form-data</c> with one file in the part <paramref name="Part"/>.</summary>
public sealed record ApiFileUpload(string Part, string Description);

/// <summary>
/// For the document: the property holds one of the strings in the static list <paramref name="member"/>
/// of <paramref name="holder"/> (its enum in <c>docs/openapi.json</c>), the list the code itself uses.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ApiValuesAttribute(Type holder, string member) : Attribute
{
    public Type Holder => holder;
    public string Member => member;
}

/// <summary>For the document: the list property holds at most <paramref name="max"/> items (the validator's own bound).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ApiMaxItemsAttribute(int max) : Attribute
{
    public int Max => max;
}

/// <summary>Endpoint metadata for the document: see <see cref="ApiDocs.NeedsSession"/>.</summary>
public sealed class ApiSessionRequired;
