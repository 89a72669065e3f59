using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Register;

/// <summary>The browser's register form (urlencoded, anti-forgery checked by the pipeline).</summary>
public sealed class FormEndpoint(MySqlDataSource db, Passwords passwords, TimeProvider time) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/register");
        AllowAnonymous();
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var form = await HttpContext.Request.ReadFormAsync(ct);
        var req = new Request
        {
            Username = form["username"].ToString(),
            Password = form["password"].ToString(),
            DisplayName = string.IsNullOrEmpty(form["displayName"]) ? null : form["displayName"].ToString(),
        };
        var result = await new Validator().ValidateAsync(req, ct);
        if (!result.IsValid)
        {
            await Reply(req, result.Errors.Select(e => e.ErrorMessage), StatusCodes.Status422UnprocessableEntity, ct);
            return;
        }
        var username = req.Username.ToLowerInvariant();
        var id = await Sql.InsertUserAsync(db, username, req.DisplayName ?? username, passwords.Hash(req.Password), time.UtcNowMillis(), ct);
        if (id is null)
        {
            await Reply(req, [$"The username '{username}' is already registered."], StatusCodes.Status409Conflict, ct);
            return;
        }
        await Layout.RedirectAfterPostAsync(HttpContext, "/login?registered=1");
    }

    Task Reply(Request values, IEnumerable<string> errors, int status, CancellationToken ct)
    {
        var form = Fragments.Form(HttpContext, values, errors);
        return Send.StringAsync(Layout.PageOrFragment(HttpContext, "Register", form), status, "text/html; charset=utf-8", ct);
    }
}
