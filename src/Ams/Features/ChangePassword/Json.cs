using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ams.Features.ChangePassword;

/// <summary>The slice's API types, serialized by source generation (Native AOT has no reflection-based JSON).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true,
    Converters = [typeof(UtcTimestampConverter), typeof(UtcOffsetTimestampConverter)])]
[JsonSerializable(typeof(Request))]
sealed partial class ChangePasswordJson : JsonSerializerContext;
