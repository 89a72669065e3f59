using System.Text.Json.Serialization;
using Ams.Infrastructure;

namespace Ams;

/// <summary>
/// Every type the API reads or writes, serialized by source generation (Native AOT has no
/// reflection-based JSON). A missing type is a run-time 500 in the AOT binary, so
/// RegistrationTests checks that every endpoint's request and response types are here.
/// </summary>
[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web, UseStringEnumConverter = true,
    Converters = [typeof(UtcTimestampConverter), typeof(UtcOffsetTimestampConverter)])]
[JsonSerializable(typeof(Features.Register.Request), TypeInfoPropertyName = "RegisterRequest")]
[JsonSerializable(typeof(Features.Register.Response), TypeInfoPropertyName = "RegisterResponse")]
[JsonSerializable(typeof(Features.Login.Request), TypeInfoPropertyName = "LoginRequest")]
[JsonSerializable(typeof(Features.Login.Response), TypeInfoPropertyName = "LoginResponse")]
[JsonSerializable(typeof(Features.Health.Response), TypeInfoPropertyName = "HealthResponse")]
[JsonSerializable(typeof(Features.Entropy.Response), TypeInfoPropertyName = "EntropyResponse")]
[JsonSerializable(typeof(Features.CreateConversation.Request), TypeInfoPropertyName = "CreateConversationRequest")]
[JsonSerializable(typeof(Features.AddMember.Request), TypeInfoPropertyName = "AddMemberRequest")]
[JsonSerializable(typeof(Features.SendMessage.Request), TypeInfoPropertyName = "SendMessageRequest")]
[JsonSerializable(typeof(Features.MarkRead.Request), TypeInfoPropertyName = "MarkReadRequest")]
[JsonSerializable(typeof(Features.History.Response), TypeInfoPropertyName = "HistoryResponse")]
[JsonSerializable(typeof(Features.Login.ChallengeResponse), TypeInfoPropertyName = "ChallengeResponse")]
[JsonSerializable(typeof(Features.TwoFactor.CodeRequest), TypeInfoPropertyName = "TwoFactorCodeRequest")]
[JsonSerializable(typeof(Features.TwoFactor.DisableRequest), TypeInfoPropertyName = "TwoFactorDisableRequest")]
[JsonSerializable(typeof(Features.TwoFactor.LoginRequest), TypeInfoPropertyName = "TwoFactorLoginRequest")]
[JsonSerializable(typeof(Features.TwoFactor.SetupResponse), TypeInfoPropertyName = "TwoFactorSetupResponse")]
[JsonSerializable(typeof(Features.TwoFactor.RecoveryCodesResponse), TypeInfoPropertyName = "TwoFactorRecoveryCodesResponse")]
[JsonSerializable(typeof(Features.TwoFactor.LoginResponse), TypeInfoPropertyName = "TwoFactorLoginResponse")]
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
