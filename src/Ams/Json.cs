using System.Text.Json.Serialization;
using Ams.Infrastructure;

namespace Ams;

/// <summary>
/// Every type the API reads or writes, serialized by source generation (Native AOT has no
/// reflection-based JSON). A missing type is a run-time 500 in the AOT binary, so
/// RegistrationTests checks that every endpoint's request and response types are here.
/// </summary>
[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(Features.Register.Request), TypeInfoPropertyName = "RegisterRequest")]
[JsonSerializable(typeof(Features.Register.Response), TypeInfoPropertyName = "RegisterResponse")]
[JsonSerializable(typeof(Features.Login.Request), TypeInfoPropertyName = "LoginRequest")]
[JsonSerializable(typeof(Features.Login.Response), TypeInfoPropertyName = "LoginResponse")]
[JsonSerializable(typeof(Features.Health.Response), TypeInfoPropertyName = "HealthResponse")]
[JsonSerializable(typeof(UserView))]
[JsonSerializable(typeof(Microsoft.AspNetCore.Mvc.ProblemDetails))]
public sealed partial class AppJsonContext : JsonSerializerContext;
