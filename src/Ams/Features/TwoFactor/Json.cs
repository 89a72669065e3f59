using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ams.Features.TwoFactor;

/// <summary>The slice's API types, serialized by source generation (Native AOT has no reflection-based JSON).</summary>
/// <remarks>Named for the slice: the JSON source generator names its files after the context class alone,
/// so two contexts called Json collide even in different namespaces (dotnet/runtime#66851).</remarks>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true,
    Converters = [typeof(UtcTimestampConverter), typeof(UtcOffsetTimestampConverter)])]
[JsonSerializable(typeof(CodeRequest))]
[JsonSerializable(typeof(SetupRequest))]
[JsonSerializable(typeof(DisableRequest))]
[JsonSerializable(typeof(RecoveryCodesRequest))]
[JsonSerializable(typeof(LoginRequest))]
[JsonSerializable(typeof(SetupResponse))]
[JsonSerializable(typeof(RecoveryCodesResponse))]
[JsonSerializable(typeof(LoginResponse))]
sealed partial class TwoFactorJson : JsonSerializerContext;
