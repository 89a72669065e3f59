using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ams.Features.Sessions;

/// <summary>The slice's API types, serialized by source generation (Native AOT has no reflection-based JSON).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true,
    Converters = [typeof(UtcTimestampConverter), typeof(UtcOffsetTimestampConverter)])]
[JsonSerializable(typeof(SessionView))]
[JsonSerializable(typeof(List<SessionView>))]
sealed partial class SessionsJson : JsonSerializerContext;

/// <summary>api.md <c>session</c>: the id names the session (the SHA-256 of its token) and cannot be used as one.</summary>
public sealed record SessionView(string Id, bool Current, DateTimeOffset CreatedAt, DateTimeOffset LastSeenAt, string UserAgent, string Address);
