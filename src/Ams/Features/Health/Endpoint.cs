using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.Health;

public sealed record Response(string Status, string Mariadb, string Redis);

/// <summary>For load balancers and the container HEALTHCHECK: names the failing part, never a secret.</summary>
public sealed class Endpoint(MariaDb db, MariaDbCircuit circuit, RedisCircuit redis, CheckStates states, ILogger<Endpoint> logger) : EndpointWithoutRequest<Response>
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    public override void Configure()
    {
        // HEAD as well, as every GET route (HeadRequests): uptime monitors probe with it.
        Get("/healthz", "/readyz");
        AllowAnonymous();
        // It checks MariaDB itself, within its own 2 s.
        Description(b => b.WithMetadata(new WithoutMariaDb()));
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        // While the circuit refuses requests the node is not ready, whatever one more query would say.
        // On a connection of its own, as the circuit probes (1 s to open and to answer, not pooled):
        // a pooled one to a hung server would stay taken, open and query running, long after the 2 s
        // were up, a connection for each poll of each load balancer. The node is ready when a host
        // its connections come from answers.
        var mariadb = circuit.IsOpen ? Task.FromResult("not answering") : Check("mariadb", token => MariaDbCircuit.AskInTurnAsync(db, token), ct);
        // A hung Redis is "not answering", as a hung MariaDB: the circuit marked it (an outside check saw
        // "unreachable" for one and "not answering" for the other, the same fault).
        var redisCheck = Check("redis", redis.PingAsync, ct, hung: () => redis.IsOpen);
        var response = new Response("ok", await mariadb, await redisCheck);
        if (response.Mariadb == "ok" && response.Redis == "ok")
            await Send.OkAsync(response, ct);
        else
        {
            // As every other 503 of the node (a contract check found these without it).
            Problem.RetryAfter(HttpContext, TimeSpan.FromSeconds(5));
            await Send.ResponseAsync(response with { Status = "unavailable" }, StatusCodes.Status503ServiceUnavailable, ct);
        }
    }

    async Task<string> Check(string part, Func<CancellationToken, Task> probe, CancellationToken ct, Func<bool>? hung = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Timeout);
        try
        {
            await probe(timeout.Token).WaitAsync(timeout.Token);
            if (states.Changed(part, failed: false)) logger.LogInformation("Health check of {Part} passes again", part);
            return "ok";
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            if (states.Changed(part, failed: true))
                logger.LogWarning("Health check of {Part} failed: {Error}; said again only once it passes", part,
                    e is OperationCanceledException ? $"no answer in {Timeout.TotalSeconds:F0} s" : Redis.Brief(e));
            return hung?.Invoke() == true ? "not answering" : "unreachable";
        }
    }
}

public sealed record LiveResponse(string Status);

/// <summary><c>GET /livez</c>: 200 while the process serves; no dependency is checked (a restart would not mend them).</summary>
public sealed class Livez : EndpointWithoutRequest<LiveResponse>
{
    public override void Configure()
    {
        Get("/livez");
        AllowAnonymous();
        Description(b => b.WithMetadata(new WithoutMariaDb()));
    }

    public override Task HandleAsync(CancellationToken ct) => Send.OkAsync(new LiveResponse("ok"), ct);
}
