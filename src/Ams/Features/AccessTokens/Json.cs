using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ams.Features.AccessTokens;

/// <summary>The slice's API types, serialized by source generation (Native AOT has no reflection-based JSON).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true,
    Converters = [typeof(UtcTimestampConverter), typeof(UtcOffsetTimestampConverter)])]
[JsonSerializable(typeof(CreateRequest))]
[JsonSerializable(typeof(CreateResponse))]
[JsonSerializable(typeof(TokenView))]
[JsonSerializable(typeof(List<TokenView>))]
sealed partial class AccessTokensJson : JsonSerializerContext;
