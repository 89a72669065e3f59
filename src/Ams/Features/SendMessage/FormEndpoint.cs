using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>
/// The browser's composer. app.js posts it with fetch and shows the message when it comes back
/// over the event stream (so it appears once, in order, on every tab); a plain form post is
/// redirected back to the conversation.
/// </summary>
public sealed class FormEndpoint(MySqlDataSource db, GroupCommit store, EventLog events, MessageEvents messages, Throttle throttle, TimeProvider time) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/c/{id}/send");
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var form = await HttpContext.Request.ReadFormAsync(ct);
        var req = new Request { ConversationId = Route<string>("id"), Body = form["body"].ToString() };
        var validation = await new Validator().ValidateAsync(req, ct);
        if (!validation.IsValid)
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status400BadRequest, validation.Errors[0].ErrorMessage);
            return;
        }
        var outcome = await Sending.SendAsync(db, store, events, messages, throttle, time, User.UserId(), req, ct);
        if (outcome is not Sending.Sent) await Sending.WriteFailureAsync(HttpContext, outcome);
        else if (HttpContext.Request.Headers["X-Requested-With"] == "fetch") await Send.NoContentAsync(ct);
        else await Layout.RedirectAfterPostAsync(HttpContext, $"/c/{req.ConversationId}");
    }
}
