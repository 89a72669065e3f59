using System.Net;
using Ams;
using Ams.Infrastructure;
using FastEndpoints;
using Microsoft.AspNetCore.HttpOverrides;
using MySqlConnector;
using StackExchange.Redis;

if (args.Contains(HealthProbe.Flag)) return await HealthProbe.RunAsync();

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
{
    Args = args,
    // The build and the publish copy the repository's top-level wwwroot/ beside the binary.
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
builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ProblemResponses.Customize);
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
if (config["Network:TrustedProxies"] is { Length: > 0 }) app.UseForwardedHeaders();
app.UseBodySizeLimit();
app.UseStaticFiles(new StaticFileOptions
{
    OnPrepareResponse = f => f.Context.Response.Headers.CacheControl = "public, max-age=3600",
});
app.UseAuthentication();
app.UseAntiforgeryCheck();
app.UseAuthorization();
app.UseFastEndpoints(Registrations.Configure);

await Migrations.ApplyAsync(app.Services.GetRequiredService<MySqlDataSource>(),
    app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Ams.Migrations"), app.Lifetime.ApplicationStopping);

app.Run();
return 0;

public partial class Program;
