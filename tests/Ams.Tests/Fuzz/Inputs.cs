using System.Text;
using CsCheck;

namespace Ams.Tests.Fuzz;

/// <summary>How a fuzzed request authenticates.</summary>
public enum Auth { None, Bearer, JunkBearer, Cookie, CookieWithoutToken, JunkCookie, PreSessionOnly, BearerAndCookie }

/// <summary>One generated request; <see cref="ToString"/> is what a failure report shows to reproduce it.</summary>
public sealed record FuzzRequest(
    string Method, string Route, string Path, string Query, Auth Auth, string? ContentType, byte[]? Body, string? Accept,
    (string Name, string Value)[] Headers)
{
    public override string ToString()
    {
        var body = Body is null ? "(none)" : Body.Length > 300
            ? $"{Body.Length} bytes: {Printable(Body.AsSpan(0, 300))}…"
            : Printable(Body);
        var headers = string.Join("; ", Headers.Select(h => $"{h.Name}: {(h.Value.Length > 80 ? h.Value[..80] + $"…({h.Value.Length})" : h.Value)}"));
        return $"{Method} {Path}{Query} [route {Route}] auth={Auth} content-type={ContentType ?? "(none)"} accept={Accept ?? "(none)"} headers=[{headers}] body={body}";
    }

    static string Printable(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder();
        foreach (var b in bytes) text.Append(b is >= 0x20 and < 0x7f ? ((char)b).ToString() : $"\\x{b:x2}");
        return text.ToString();
    }
}

/// <summary>
/// Generators of hostile input: boundary strings, wrong JSON types and shapes, broken bodies of
/// every content type, odd headers. Each value is chosen to reach a different parser path.
/// </summary>
public static class Inputs
{
    /// <summary>Text that breaks naive handling: NUL, lone surrogates, bidi controls, markup, SQL, sizes at and past the limits.</summary>
    public static readonly Gen<string> HostileString = Gen.Frequency(
        (6, Gen.OneOf("", " ", "\0", "a\0b", "\uD800", "x\uDC00y", "\u202Eevil\u202C", "\uFEFF", "\u200B", "🦊", "e\u0301",
            "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "' OR '1'='1' -- ", "\"; DROP TABLE users; --",
            "%00", "%s%n%x", "../../../../etc/passwd", "\r\nSet-Cookie: x=1", "null", "true", "0", "-1", "1e309", "NaN",
            "18446744073709551616", "9223372036854775807", "-9223372036854775808", "alice", "ALICE", "alice\n", "  alice  ",
            "javascript:alert(1)", "{{7*7}}", "${jndi:ldap://x}", "\\u0000")),
        (2, Gen.String[Gen.Char, 0, 40]),
        (1, Gen.OneOf(new string('a', 65_537), new string('é', 40_000), new string('x', 4_001), new string('x', 33), new string('x', 65))),
        (1, Gen.Char.Array[1, 8].Select(c => new string(c))));

    /// <summary>Names the API's requests use, so wrong types reach the binders and validators, plus some that none uses.</summary>
    public static readonly Gen<string> FieldName = Gen.Frequency(
        (8, Gen.OneOf("username", "password", "displayName", "conversationId", "to", "body", "title", "members", "upTo",
            "code", "challenge", "recoveryCode", "token", "currentPassword", "newPassword", "name", "expiresAt", "id", "before",
            "limit", "after", "_csrf")),
        (1, HostileString));

    static readonly Gen<string> JsonNumber = Gen.OneOf("0", "-0", "1", "-1", "1.5", "1e309", "-1e309", "12345678901234567890123",
        "9223372036854775807", "0.0000000000000000000001", "1E2");

    public static readonly Gen<string> JsonValue = Gen.Recursive<string>((depth, self) => depth >= 3
        ? Gen.Frequency((3, HostileString.Select(Quote)), (1, JsonNumber), (1, Gen.OneOf("true", "false", "null")))
        : Gen.Frequency(
            (5, HostileString.Select(Quote)),
            (2, JsonNumber),
            (1, Gen.OneOf("true", "false", "null", "[]", "{}")),
            (1, self.Array[0, 4].Select(items => "[" + string.Join(",", items) + "]")),
            (1, Gen.Select(FieldName, self).Array[0, 4].Select(Object))));

    public static readonly Gen<string> JsonText = Gen.Frequency(
        (6, Gen.Select(FieldName, JsonValue).Array[0, 6].Select(Object)),
        // Truncated: a valid document cut anywhere.
        (2, Gen.Select(Gen.Select(FieldName, JsonValue).Array[1, 5].Select(Object), Gen.Double[0, 1])
            .Select((json, cut) => json[..(int)(json.Length * cut)])),
        // The same key twice with different types.
        (1, Gen.Select(FieldName, JsonValue, JsonValue).Select((k, a, b) => $"{{{Quote(k)}:{a},{Quote(k)}:{b}}}")),
        (1, JsonValue),
        (1, Gen.Int[200, 2000].Select(depth => new string('[', depth) + new string(']', depth))),
        (1, Gen.OneOf("", "{", "}", "{\"a\":}", "{'a':1}", "{\"a\":1,}", "[1,2", "\"unterminated", "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\u0000\"}", "{\"body\":\"\\uDFFF\"}", "\uFEFF{}", "/* c */{}")));

    /// <summary>Bytes that are not UTF-8 at all: overlong forms, surrogates encoded, truncated sequences.</summary>
    public static readonly Gen<byte[]> BadUtf8 = Gen.OneOf(
        new byte[] { 0xC0, 0xAF }, new byte[] { 0xE0, 0x80, 0xAF }, new byte[] { 0xED, 0xA0, 0x80 }, new byte[] { 0xF8, 0x88, 0x80, 0x80, 0x80 },
        new byte[] { 0xFF, 0xFE }, new byte[] { 0xE2, 0x82 }, new byte[] { 0x80 });

    public static readonly Gen<string> FormText = Gen.Frequency(
        (6, Gen.Select(FieldName, HostileString).Array[0, 6].Select(fields =>
            string.Join("&", fields.Select(f => Uri.EscapeDataString(f.Item1) + "=" + Escape(f.Item2))))),
        // Raw percent-escapes the decoder has to judge: NUL, overlong UTF-8, encoded surrogates, broken escapes.
        (2, Gen.Select(FieldName, Gen.OneOf("%00", "a%00b", "%C0%AF", "%ED%A0%80", "%E0%80%AF", "%FF", "%", "%G1", "%E2%82", "+%2B+"))
            .Array[1, 4].Select(fields => string.Join("&", fields.Select(f => Uri.EscapeDataString(f.Item1) + "=" + f.Item2)))),
        (1, Gen.OneOf(
            string.Join("&", Enumerable.Range(0, 1_100).Select(i => $"f{i}=1")),   // past the 1,024-field limit
            new string('k', 2_049) + "=v",                                        // a key past the 2,048-character limit
            "=&&=&a==b&%26=%3D", "a", "&&&")));

    public static readonly Gen<string?> Accept = Gen.OneOf<string?>(
        null, "*/*", "text/html", "text/event-stream", "application/json", "application/problem+json", "text/plain",
        "application/xml", "image/png", "text/html;q=0.1, application/json;q=0.9", "garbage/", ";;;", "text/html, text/event-stream");

    public static readonly Gen<string?> ContentType = Gen.OneOf<string?>(
        "application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8", "multipart/form-data; boundary=fuzzb", "multipart/form-data",
        "multipart/form-data; boundary=", "text/plain", "application/xml", "application/json; charset=latin1", "application/json; charset=\"utf-8\"",
        "application/json; charset=bogus", "application/merge-patch+json; charset=utf-7", "garbage", null);

    /// <summary>
    /// Route values: ours and others' ids, and everything that is not an id. (No %00: the test host
    /// cannot build such a path, and Kestrel refuses it with 400 before the app sees it.)
    /// </summary>
    public static Gen<string> RouteValue(string ownId, string othersId) => Gen.Frequency(
        (4, Gen.Const(ownId)),
        (2, Gen.Const(othersId)),
        (3, Gen.OneOf("0", "-1", "1", "99999999999", "18446744073709551616", "abc", "%F0%9F%A6%8A", "1%20", "1.5",
            "%2e%2e", new string('9', 400), "1e3", "%C0%AF", "%ED%A0%80")));

    public static readonly Gen<string> Query = Gen.Frequency(
        (3, Gen.Const("")),
        (3, Gen.Select(Gen.OneOf("before", "limit", "after", "active", "id", "x"), Gen.OneOf("", "0", "-1", "1", "50", "101",
            "abc", "%00", "99999999999999999999", "1.5", "%ED%A0%80", "%C0%AF", "1&limit=2&limit=3")).Array[1, 3]
            .Select(pairs => "?" + string.Join("&", pairs.Select(p => $"{p.Item1}={p.Item2}")))));

    public static readonly Gen<(string, string)[]> ExtraHeaders = Gen.Frequency(
        (5, Gen.Const(Array.Empty<(string, string)>())),
        (2, Gen.OneOf(("HX-Request", "true"), ("X-Requested-With", "fetch"), ("Last-Event-ID", "0"), ("Last-Event-ID", "-5"),
            ("Last-Event-ID", "99999999999999999999"), ("Last-Event-ID", "abc"), ("X-Forwarded-For", "1.2.3.4, ::1"),
            ("X-CSRF-Token", "forged"), ("Origin", "https://evil.example"), ("Cookie", "ams_session=" + new string('a', 8_000)),
            ("X-Long", new string('h', 32_000)), ("Accept-Language", "\u00e9\u00e9")).Array[1, 3]));

    public static string Quote(string value) => System.Text.Json.JsonSerializer.Serialize(value, FuzzJson.Default.String);

    static string Object((string Key, string Value)[] fields) => "{" + string.Join(",", fields.Select(f => $"{Quote(f.Key)}:{f.Value}")) + "}";

    // Lone surrogates cannot be percent-encoded as UTF-8; they go out as the replacement's bytes would.
    static string Escape(string value)
    {
        try { return Uri.EscapeDataString(value); }
        catch (UriFormatException) { return "%ED%A0%80"; }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
sealed partial class FuzzJson : System.Text.Json.Serialization.JsonSerializerContext;
