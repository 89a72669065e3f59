using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ams.Features.MarkRead;

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true,
    Converters = [typeof(UtcTimestampConverter), typeof(UtcOffsetTimestampConverter)])]
[JsonSerializable(typeof(Request))]
[JsonSerializable(typeof(ReadView))]
sealed partial class Json : JsonSerializerContext;
