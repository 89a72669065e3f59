using System.Net;
using Ams;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Features.Entropy;
using FastEndpoints;
using Microsoft.AspNetCore.HttpOverrides;
using MySqlConnector;
using StackExchange.Redis;

if (args.Contains(HealthProbe.Flag)) return await HealthProbe.RunAsync();

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
{
    Args = args,
    // appsettings.json and the repository's top-level wwwroot/ are copied beside the binary by
    // the build and the publish, so the app finds them wherever it is started from.
    ContentRootPath = AppContext.BaseDirectory,
    WebRootPath = Path.Combine(AppContext.BaseDirectory, "wwwroot"),
});
builder.WebHost.ConfigureKestrel(o =>
{
    o.AddServerHeader = false;
    o.Limits.MaxRequestBodySize = RequestLimits.MaxBodyBytes;
});
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
    builder.WebHost.UseUrls("http://localhost:8082");

var config = builder.Configuration;
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.ConfigureHttpJsonOptions(o =>
{
    o.SerializerOptions.TypeInfoResolverChain.Insert(0, AppJsonContext.Default);
    o.SerializerOptions.Converters.Add(new UtcTimestampConverter());
    o.SerializerOptions.Converters.Add(new UtcOffsetTimestampConverter());
});
builder.Services.AddDatabase(config);
builder.Services.AddRedis(config);
builder.Services.AddSingleton(config.GetSection("Sessions").Get<SessionLifetime>() ?? new());
builder.Services.AddSingleton<SessionStore>();
builder.Services.AddSingleton<Passwords>();
builder.Services.AddSingleton(config.GetSection("Login").Get<Ams.Features.Login.ThrottleOptions>() ?? new());
builder.Services.AddSingleton<Ams.Features.Login.Throttle>();
builder.Services.AddSingleton(sp => MasterKeys.Load(config, builder.Environment, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Ams.Crypto")));
var entropy = config.GetSection("Entropy").Get<EntropyOptions>() ?? new();
builder.Services.AddSingleton(entropy);
builder.Services.AddSingleton(config.GetSection("RandomOrg").Get<RandomOrgOptions>() ?? new());
builder.Services.AddSingleton(sp => new EntropyMixer(sp.GetRequiredService<TimeProvider>()) { FreshFor = entropy.ReseedInterval * 2 });
builder.Services.AddSingleton<Envelope>();
builder.Services.AddSingleton<RandomOrgClient>();
builder.Services.AddSingleton<Pool>();
builder.Services.AddSingleton<Refiller>();
builder.Services.AddHostedService<Service>();
builder.Services.AddSingleton<Ams.Infrastructure.Messaging.EventLog>();
builder.Services.AddSingleton<Ams.Infrastructure.Messaging.EventHub>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<Ams.Infrastructure.Messaging.EventHub>());
builder.Services.AddSingleton(config.GetSection("Events").Get<Ams.Features.Events.StreamOptions>() ?? new());
builder.Services.AddSingleton<Ams.Features.Events.Stream>();
builder.Services.AddSingleton<Ams.Infrastructure.Messaging.IEventFragment, Ams.Features.SendMessage.Fragments>();
builder.Services.AddSingleton<Ams.Infrastructure.Messaging.IEventFragment, Ams.Features.MarkRead.Fragments>();
builder.Services.AddSingleton(config.GetSection("Messaging").Get<Ams.Features.SendMessage.SendLimits>() ?? new());
builder.Services.AddSingleton<Ams.Features.SendMessage.Throttle>();
builder.Services.AddSingleton<Ams.Features.SendMessage.GroupCommit>();
builder.Services.AddSingleton<Challenges>();
builder.Services.AddSingleton(config.GetSection("TwoFactor").Get<Ams.Features.TwoFactor.GuardOptions>() ?? new());
builder.Services.AddSingleton<Ams.Features.TwoFactor.Totp>();
builder.Services.AddSingleton<Ams.Features.TwoFactor.Operations>();
builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ProblemResponses.Customize);
builder.Services.AddSingleton<Microsoft.AspNetCore.Http.IProblemDetailsWriter, ProblemJsonWriter>();
builder.Services.AddAuthentication(SessionAuthentication.SchemeName)
    .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, SessionAuthentication>(SessionAuthentication.SchemeName, null);
builder.Services.AddAuthorization();
builder.Services.AddFastEndpoints(Registrations.Types);
// X-Forwarded-For is believed only from proxies the operator names; otherwise a client could
// pick its own address and dodge the per-address login throttle.
if (config["Network:TrustedProxies"] is { Length: > 0 } proxies)
    builder.Services.Configure<ForwardedHeadersOptions>(o =>
    {
        o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
        o.KnownProxies.Clear();
        o.KnownIPNetworks.Clear();
        foreach (var proxy in proxies.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            o.KnownProxies.Add(IPAddress.Parse(proxy));
    });

var app = builder.Build();

app.UseSecurityHeaders();
app.UseExceptionHandler(new ExceptionHandlerOptions { StatusCodeSelector = ProblemResponses.StatusFor });
app.UseStatusCodePages();
app.UseUnreadableBodiesAsBadRequest();
if (config["Network:TrustedProxies"] is { Length: > 0 }) app.UseForwardedHeaders();
app.UseBodySizeLimit();
app.UseStaticFiles(new StaticFileOptions
{
    OnPrepareResponse = f => f.Context.Response.Headers.CacheControl = "public, max-age=3600",
});
app.UseAuthentication();
app.UseAntiforgeryCheck();
app.UseAuthorization();
app.UseFastEndpoints(c =>
{
    Registrations.Configure(c);
    // In the API's words, never the serializer's: its messages name .NET types and internals.
    c.Binding.JsonExceptionTransformer = e => new FluentValidation.Results.ValidationFailure(
        e.Path is { Length: > 1 } path ? path.TrimStart('$', '.') : "body",
        e.Path is { Length: > 1 } at ? $"The value at {at} is not of the expected type or is not valid JSON." : "The request body is not valid JSON.");
});

// Fail fast, before serving anything, when Production has no master key.
var masterKeys = app.Services.GetRequiredService<MasterKeys>();
var db = app.Services.GetRequiredService<MySqlDataSource>();
var loggers = app.Services.GetRequiredService<ILoggerFactory>();
await Migrations.ApplyAsync(db, loggers.CreateLogger("Ams.Migrations"), app.Lifetime.ApplicationStopping);
if (args.Contains(KeyRotation.Flag))
{
    var rotation = await KeyRotation.RunAsync(db, masterKeys, loggers.CreateLogger("Ams.KeyRotation"));
    Console.WriteLine($"re-wrapped {rotation.Rewrapped} data keys under '{masterKeys.PrimaryId}'; " +
                      $"{rotation.RemainingUnderOtherKeys} remain under other master keys ({rotation.Unreadable} unreadable)");
    return rotation.RemainingUnderOtherKeys == 0 ? 0 : 1;
}

app.Run();
return 0;

public partial class Program;
