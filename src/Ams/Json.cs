using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using System.Text.Unicode;
using Ams.Infrastructure;

namespace Ams;

/// <summary>
/// The JSON types owned outside the slices: shared views, the live events on Redis and
/// problem details. Each slice keeps its API types in its own Json.cs; Slices.JsonContexts
/// lists every context for the serializer options.
/// </summary>
[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web, UseStringEnumConverter = true,
    Converters = [typeof(UtcTimestampConverter), typeof(UtcOffsetTimestampConverter)])]
[JsonSerializable(typeof(UserView))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(Infrastructure.Messaging.LiveEvent))]
[JsonSerializable(typeof(Infrastructure.Messaging.MessageView))]
[JsonSerializable(typeof(Infrastructure.Messaging.ConversationView))]
[JsonSerializable(typeof(List<Infrastructure.Messaging.ConversationView>))]
[JsonSerializable(typeof(Microsoft.AspNetCore.Mvc.ProblemDetails))]
public sealed partial class AppJsonContext : JsonSerializerContext;

/// <summary>api.md timestamps: ISO 8601 UTC with milliseconds, <c>2026-11-25T18:00:00.123Z</c>.</summary>
public sealed class UtcTimestampConverter : JsonConverter<DateTime>
{
    const string Format = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public override DateTime Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        reader.GetDateTimeOffset().UtcDateTime;

    // Formatted into the stack: every message and event carries a timestamp, and a string per write showed in the send profile.
    public override void Write(System.Text.Json.Utf8JsonWriter writer, DateTime value, System.Text.Json.JsonSerializerOptions options)
    {
        Span<byte> utf8 = stackalloc byte[32];
        if (!value.ToUniversalTime().TryFormat(utf8, out var written, Format, System.Globalization.CultureInfo.InvariantCulture))
            throw new FormatException($"A timestamp longer than {utf8.Length} bytes");   // years past 9999 do not exist
        writer.WriteStringValue(utf8[..written]);
    }
}

public sealed class UtcOffsetTimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(System.Text.Json.Utf8JsonWriter writer, DateTimeOffset value, System.Text.Json.JsonSerializerOptions options) =>
        new UtcTimestampConverter().Write(writer, value.UtcDateTime, options);
}

/// <summary>
/// JSON text as people wrote it: every script and emoji go out as UTF-8, so a Cyrillic message or
/// a 👍 reaction reads as itself in curl rather than as <c>\u041F…</c> or <c>\uD83D\uDC4D</c>.
/// The built-in encoders escape everything outside the Basic Multilingual Plane, emoji included:
/// this one lets a valid surrogate pair through and leaves the rest to
/// <c>JavaScriptEncoder.Create(UnicodeRanges.All)</c>, which still escapes the HTML-sensitive
/// characters (<c>&lt; &gt; &amp; ' "</c>) and <c>+ `</c>, controls, U+2028/2029, non-ASCII spaces,
/// unassigned and private-use code points, and lone surrogates.
/// </summary>
public sealed class ReadableJsonEncoder : JavaScriptEncoder
{
    public static readonly ReadableJsonEncoder Instance = new();

    static readonly JavaScriptEncoder Bmp = Create(UnicodeRanges.All);

    ReadableJsonEncoder() { }

    /// <summary><paramref name="info"/> (a source-generated context's) writing through this encoder.</summary>
    public static JsonTypeInfo<T> Of<T>(JsonTypeInfo<T> info) =>
        (JsonTypeInfo<T>)new JsonSerializerOptions(info.Options) { Encoder = Instance }.GetTypeInfo(typeof(T));

    public override int MaxOutputCharactersPerInputCharacter => Bmp.MaxOutputCharactersPerInputCharacter;

    public override bool WillEncode(int unicodeScalar) => unicodeScalar > 0xFFFF ? !Passes(unicodeScalar) : Bmp.WillEncode(unicodeScalar);

    // As the BMP's own: unassigned and private-use code points and noncharacters stay escaped.
    static bool Passes(int supplementary) =>
        Rune.GetUnicodeCategory(new Rune(supplementary)) is not (UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse);

    // The built-in scan finds the first character it would escape; from there the writer asks
    // WillEncode character by character, which lets the emoji through.
    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength) => Bmp.FindFirstCharacterToEncode(text, textLength);

    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text) => Bmp.FindFirstCharacterToEncodeUtf8(utf8Text);

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten) =>
        Bmp.TryEncodeUnicodeScalar(unicodeScalar, buffer, bufferLength, out numberOfCharactersWritten);
}
