using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Register;

/// <summary>Creates an account: the JSON call and the browser's form (see <see cref="ApiAndForm"/>).</summary>
public sealed class Endpoint(MySqlDataSource db, Passwords passwords, TimeProvider time) : Endpoint<Request, Response>
{
    public override void Configure()
    {
        Post("/api/register", "/register");
        AllowAnonymous();
        ApiAndForm.Configure(Definition);
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
        var username = req.Username.ToLowerInvariant();
        var displayName = req.DisplayName ?? username;
        var id = await Sql.InsertUserAsync(db, username, displayName, passwords.Hash(req.Password), time.UtcNowMillis(), ct);
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

    Task FormAsync(Request values, IEnumerable<string> errors, int status) =>
        Layout.SendAsync(HttpContext, "Register", Fragments.Form(HttpContext, values, errors), status);
}
