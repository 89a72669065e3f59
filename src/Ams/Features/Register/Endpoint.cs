using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Register;

/// <summary>Creates an account: the JSON call and the browser's form (see <see cref="ApiAndForm"/>).</summary>
public sealed class Endpoint(MariaDb db, Passwords passwords, TimeProvider time, RedisCircuit redis, RegistrationLimits limits) : Endpoint<Request, Response>
{
    public override void Configure()
    {
        Post("/api/register", "/register");
        AllowAnonymous();
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "Create an account", b => b.Produces<Response>(StatusCodes.Status201Created), 400, 403,
            (409, "Conflict: the username is taken (an invite is not used up)"), 429, ApiDocs.PasswordCheckBusy);
    }

    // An empty optional field means "not given", as a missing JSON property does.
    public override void OnBeforeValidate(Request req)
    {
        if (!HttpContext.IsApi() && req.DisplayName == "") req.DisplayName = null;
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            await FormAsync(req, errors, StatusCodes.Status422UnprocessableEntity);
            return;
        }
        if (limits.Mode == RegistrationMode.Closed)
        {
            await (HttpContext.IsApi()
                ? Problem.WriteAsync(HttpContext, StatusCodes.Status403Forbidden, "Registration closed", ClosedDetail)
                : FormAsync(req, [ClosedDetail], StatusCodes.Status403Forbidden));
            return;
        }
        // Counted before the (deliberately expensive) hash, so a burst cannot outrun the limit.
        if (await RateLimit.TryAcquireAsync(HttpContext, redis, $"registrations:addr:{ClientAddress.BucketOf(HttpContext)}", limits.MaxPerAddress, limits.Window) is { } wait)
        {
            await (HttpContext.IsApi()
                ? Problem.WriteAsync(HttpContext, StatusCodes.Status429TooManyRequests, "Too many registrations", "Wait before registering another account.", wait)
                : ThrottledFormAsync(req, wait));
            return;
        }
        var username = req.Username.ToLowerInvariant();
        var displayName = req.DisplayName?.Trim() ?? username;
        long? id;
        if (limits.Mode == RegistrationMode.Invite)
        {
            // Missing, unknown and used codes get the same answer; an unusable one costs no password hash.
            var (outcome, created) = await Invites.IsUsableAsync(db, req.Invite, ct)
                ? await Sql.InsertInvitedUserAsync(db, Invites.HashOf(req.Invite!), username, displayName, await passwords.HashAsync(req.Password, ct), time.UtcNowMillis(), ct)
                : (Sql.InvitedOutcome.InviteRejected, 0);
            if (outcome == Sql.InvitedOutcome.InviteRejected)
            {
                await (HttpContext.IsApi()
                    ? Problem.WriteAsync(HttpContext, StatusCodes.Status403Forbidden, "Invite required", InviteDetail)
                    : FormAsync(req, [InviteDetail], StatusCodes.Status403Forbidden));
                return;
            }
            id = outcome == Sql.InvitedOutcome.Created ? created : null;
        }
        else
            id = await Sql.InsertUserAsync(db, username, displayName, await passwords.HashAsync(req.Password, ct), time.UtcNowMillis(), ct);
        var taken = $"The username '{username}' is already registered.";
        await ((HttpContext.IsApi(), id) switch
        {
            (true, null) => Problem.WriteAsync(HttpContext, StatusCodes.Status409Conflict, "Username taken", taken),
            (true, { } created) => Send.ResponseAsync(new Response(created.ToString(System.Globalization.CultureInfo.InvariantCulture), username, displayName),
                StatusCodes.Status201Created, ct),
            (false, null) => FormAsync(req, [taken], StatusCodes.Status409Conflict),
            (false, _) => Layout.RedirectAfterPostAsync(HttpContext, "/login?registered=1"),
        });
    }

    public const string ClosedDetail = "Registration is closed on this server; an administrator creates accounts.";
    public const string InviteDetail = "Registration needs a valid, unused invite code from an administrator.";

    Task ThrottledFormAsync(Request values, TimeSpan wait)
    {
        Problem.RetryAfter(HttpContext, wait);
        return FormAsync(values, [$"Too many registrations from your address. Try again in {Math.Ceiling(wait.TotalMinutes)} minutes."],
            StatusCodes.Status429TooManyRequests);
    }

    Task FormAsync(Request values, IEnumerable<string> errors, int status) =>
        Layout.SendAsync(HttpContext, "Register", Fragments.Form(HttpContext, values, errors, limits.Mode), status);
}
