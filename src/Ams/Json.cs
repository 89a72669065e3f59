using System.Text.Json.Serialization;
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

    public override void Write(System.Text.Json.Utf8JsonWriter writer, DateTime value, System.Text.Json.JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToUniversalTime().ToString(Format, System.Globalization.CultureInfo.InvariantCulture));
}

public sealed class UtcOffsetTimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(System.Text.Json.Utf8JsonWriter writer, DateTimeOffset value, System.Text.Json.JsonSerializerOptions options) =>
        new UtcTimestampConverter().Write(writer, value.UtcDateTime, options);
}
