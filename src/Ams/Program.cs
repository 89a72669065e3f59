using System.Net;
using Ams;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using Microsoft.AspNetCore.HttpOverrides;
using MySqlConnector;
using StackExchange.Redis;

if (args.Contains(HealthProbe.Flag)) return await HealthProbe.RunAsync();

// `Ams admin …` runs one administration command against the server's configuration and exits.
var admin = Ams.Features.Admin.Cli.IsAdmin(args);
WebApplication app;
WebApplication? built = null;
// Everything up to serving is startup: what fails there (a missing or placeholder setting, an
// unreachable database, a port in use) ends the process with its message alone and exit code 1,
// never a stack trace (and never an abort, which PID 1 in a container turns into exit 134/139).
try
{
    app = built = Build(admin ? [] : args, admin);
    // Fail fast, before serving anything, when Production has no master key.
    var masterKeys = app.Services.GetRequiredService<MasterKeys>();
    var db = app.Services.GetRequiredService<MariaDb>();
    var loggers = app.Services.GetRequiredService<ILoggerFactory>();
    await Migrations.ApplyAsync(db, loggers.CreateLogger("Ams.Migrations"), app.Lifetime.ApplicationStopping);
    var rotating = args.Contains(KeyRotation.Flag);
    // Admin commands and a rotation too, before anything below writes a key: run with a wrong list,
    // they wrapped a new key under an id no node lists, and every node then refused to start.
    await KeyRotation.RefuseUnreadableDataKeysAsync(db, masterKeys, app.Lifetime.ApplicationStopping);
    // Before a rotation too: the keys derived from the master keys it re-wraps away from must be kept first.
    await Ams.Features.TwoFactor.RecoveryCodeKeys.KeepAsync(db, app.Services.GetRequiredService<Envelope>(), masterKeys,
        app.Services.GetRequiredService<TimeProvider>().UtcNowMillis(), app.Lifetime.ApplicationStopping);
    if (rotating)
    {
        var rotation = await KeyRotation.RunAsync(db, masterKeys, loggers.CreateLogger("Ams.KeyRotation"));
        Console.WriteLine($"re-wrapped {rotation.Rewrapped} data keys under '{masterKeys.PrimaryId}'; " +
                          $"{rotation.RemainingUnderOtherKeys} remain under other master keys ({rotation.Unreadable} unreadable)");
        return rotation.RemainingUnderOtherKeys == 0 ? 0 : 1;
    }
    if (admin)
    {
        try
        {
            return await Ams.Features.Admin.Cli.RunAsync(app.Services, args[1..], Console.In, Console.Out, Console.Error);
        }
        finally
        {
            await DisposeBoundedAsync(app);
        }
    }
    await Redis.WaitAtStartAsync(app.Services.GetRequiredService<IConnectionMultiplexer>(), loggers.CreateLogger("Ams.Redis"), app.Lifetime.ApplicationStopping);
    await app.StartAsync();
    StartupFailure.Serving = true;
}
catch (Exception e) when (e is not HostAbortedException && !StartupFailure.Propagate)
{
    var exitCode = StartupFailure.Report(e, Console.Error);
    // A start that failed late (a port in use) had joined the revocation channel already: disposed,
    // its session store says goodbye, so the servers' revocations stop waiting for this process
    // (unheard, each would wait 500 ms for it during the next 2 s).
    if (built is not null) await DisposeBoundedAsync(built, stop: true);
    return exitCode;
}
await app.WaitForShutdownAsync();
await app.DisposeAsync();
return 0;

// The process's own outcome (an exit code already decided) stands whatever disposal meets, and a
// hung Redis or MariaDB does not hold its exit for long.
static async Task DisposeBoundedAsync(WebApplication app, bool stop = false)
{
    try
    {
        // Stopped first, the host knows that the background services it started are cancelled on
        // purpose; disposed alone, it reported each one's cancellation as a crash ("A BackgroundService
        // has thrown an unhandled exception", with a stack trace) whenever one lost the race with the
        // exit: 5 of 30 starts that gave up on Redis.
        if (stop) await app.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(3)).Token).WaitAsync(TimeSpan.FromSeconds(4));
    }
    catch (Exception)
    {
    }
    try
    {
        await app.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
    }
    catch (Exception)
    {
    }
}

static WebApplication Build(string[] args, bool admin)
{
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
    // The default only when no listener is configured: the container sets ASPNETCORE_HTTP_PORTS, and
    // Kestrel's own endpoint settings replace all of these (a default beside them was "overridden",
    // with a warning at every start).
    if (new[] { "urls", "http_ports", "https_ports" }.All(key => string.IsNullOrEmpty(builder.Configuration[key]))
        && !builder.Configuration.GetSection("Kestrel:Endpoints").Exists())
        builder.WebHost.UseUrls("http://localhost:8082");

    var config = builder.Configuration;
    SettingRanges.Check(config);
    builder.Services.AddSingleton(TimeProvider.System);
    builder.Services.ConfigureHttpJsonOptions(o =>
    {
        // FastEndpoints copies these options in UseFastEndpoints, so its serializer gets the contexts too.
        foreach (var (i, context) in Slices.JsonContexts.Index()) o.SerializerOptions.TypeInfoResolverChain.Insert(i, context);
        o.SerializerOptions.Converters.Add(new UtcTimestampConverter());
        o.SerializerOptions.Converters.Add(new UtcOffsetTimestampConverter());
        o.SerializerOptions.Encoder = ReadableJsonEncoder.Instance;
        // The web defaults read "5" as 5; api.md promises 400 for a wrong JSON type (ids are strings, counts numbers).
        o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
        // A key given twice is refused, not "the last one wins": a proxy or filter in front that reads
        // the first would judge another request than the one AMS runs (JSON interoperability).
        o.SerializerOptions.AllowDuplicateProperties = false;
        // Names are api.md's camelCase exactly: "Body" is an unknown field, ignored, not the body. The
        // web defaults matched any case, so a filter in front that checks "body" would miss it.
        o.SerializerOptions.PropertyNameCaseInsensitive = false;
    });
    builder.AddProblemResponses();
    builder.Services.AddDatabase(config);
    builder.Services.AddRedis(config);
    builder.Services.AddSingleton<Outages>();
    builder.AddAccounts();
    builder.AddEnvelopeEncryption();
    builder.AddLiveEvents();
    builder.AddMetricsExposition();
    builder.AddOtlpExport();
    // Logging__Console__FormatterName=json: one JSON object per line, with the request's trace and span
    // ids. Said explicitly, since the slim builder's console logger pins the simple formatter.
    if (string.Equals(config["Logging:Console:FormatterName"], "json", StringComparison.OrdinalIgnoreCase))
        builder.Logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        });
    Slices.AddServices(builder);
    builder.Services.AddFastEndpoints(Slices.Types);
    // X-Forwarded-For is believed only from proxies the operator names; otherwise a client could
    // pick its own address and dodge the per-address login throttle. Addresses or CIDRs.
    var trustedProxies = config["Network:TrustedProxies"] is { Length: > 0 } proxies ? ClientAddress.ParseNetworks(proxies, "Network:TrustedProxies") : [];
    if (trustedProxies.Count > 0)
        builder.Services.Configure<ForwardedHeadersOptions>(o =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var network in trustedProxies) o.KnownIPNetworks.Add(network);
        });

    // Hosting's "Request starting" lines carry the whole URL, query included: a client that puts its
    // token in `?access_token=` (refused) would have it written to the log at Information.
    builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", level => level >= LogLevel.Warning);
    // Its warnings ("Range not satisfiable") are any anonymous client's to write at will.
    builder.Logging.AddFilter("Microsoft.AspNetCore.StaticFiles", level => level >= LogLevel.Error);
    if (admin)
    {
        // A command's output is its own (list-users is tab-separated for scripts): warnings, such as
        // the development master key's, go to stderr.
        builder.Logging.AddFilter((category, level) => level >= LogLevel.Warning);
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    }
    else builder.Logging.AddFilter(StartupFailure.HostCategory, level => level >= (StartupFailure.Serving ? LogLevel.Warning : LogLevel.Critical));
    var app = builder.Build();

    app.UseHeadAsGet();
    app.UseRouting();
    app.UseSecurityHeaders();
    app.UseExceptionHandler(new ExceptionHandlerOptions
    {
        StatusCodeSelector = ProblemResponses.StatusFor,
        // An outage and a write that kept losing its conflicts are logged where they happen, in one
        // line; a request the server refused to read (a body past its limit) is the client's, and
        // any client could fill the log with its stack traces, as with a sign-in refused for want of
        // a free password-hashing slot (counted instead: ams_passwords_refused_total).
        SuppressDiagnosticsCallback = c => app.Services.GetRequiredService<Outages>().Refused(c.Exception)
            || c.Exception is ConflictRetry.StillConflictingException or BadHttpRequestException or PasswordHashingBusyException,
    });
    // A browser navigating to a missing page gets a page; everything else problem details.
    app.UseStatusCodePages(new StatusCodePagesOptions { HandleAsync = Layout.StatusCodePageAsync });
    app.UseUnreadableBodiesAsBadRequest();
    app.UseNoInternalRoutes();
    app.UseUntrustedForwardingWarning(trustedProxies);
    if (trustedProxies.Count > 0) app.UseForwardedHeaders();
    app.UseMetricsExposition();
    app.UseBodySizeLimit();
    app.UsePrecompressedStaticFiles();
    app.UseAuthentication();
    app.UseAccessTokenScope();
    app.UseAntiforgeryCheck();
    app.UseAuthorization();
    // After the credentials are checked: a missing or unknown one is a 401 (or 403) whether or not
    // MariaDB answers; only a request that would go on to use MariaDB is refused.
    app.UseMariaDbCircuit();
    app.UseConflictRetry();
    app.UseFastEndpoints(c =>
    {
        Slices.AddRequestTypes(c.Binding.ReflectionCache);
        c.Errors.UseProblemDetails(p =>
        {
            // The same type URI that ASP.NET gives every other 400 the app sends (FastEndpoints'
            // own map, which TypeValue does not override, cites RFC 7231). Validation is always a 400.
            p.TypeTransformer = _ => "https://tools.ietf.org/html/rfc9110#section-15.5.1";
            // A detail for every failure, not only a single one: clients that show the detail alone still say something.
            p.DetailTransformer = d => d.Errors.Count() is var n && n == 1 ? d.Errors.First().Reason : $"The request has {n} problems; errors lists each.";
        });
        // In the API's words, never the serializer's: its messages name .NET types and internals.
        // A duplicate key is told by the serializer's message alone (its exception has no other mark);
        // MalformedBodyTests notices if a runtime changes the words.
        c.Binding.JsonExceptionTransformer = e => new FluentValidation.Results.ValidationFailure(
            e.Path is { Length: > 1 } path ? path.TrimStart('$', '.') : "body",
            e.Path is not { Length: > 1 } at ? "The request body is not a JSON object."
            : e.Message.StartsWith("Duplicate property", StringComparison.Ordinal) ? $"The key {at.TrimStart('$', '.')} is given twice; give each key once."
            : $"The value at {at} is not of the expected type or is not valid JSON.");
    });

    return app;
}

public partial class Program;
