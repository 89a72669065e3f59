using System.Text.Json;
using System.Text.Json.Serialization;
using Ams.Infrastructure;

namespace Ams.Features.SecurityHistory;

/// <summary>The slice's API types, serialized by source generation (Native AOT has no reflection-based JSON).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true,
    Converters = [typeof(UtcTimestampConverter), typeof(UtcOffsetTimestampConverter)])]
[JsonSerializable(typeof(SecurityEventView))]
[JsonSerializable(typeof(List<SecurityEventView>))]
sealed partial class SecurityHistoryJson : JsonSerializerContext;

/// <summary>api.md <c>securityEvent</c>.</summary>
public sealed record SecurityEventView(DateTime At, [property: ApiValues(typeof(SecurityEvents), nameof(SecurityEvents.Kinds))] string Kind, string Address, string UserAgent);
