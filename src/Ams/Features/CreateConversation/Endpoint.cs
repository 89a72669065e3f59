using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.CreateConversation;

/// <summary>
/// A group (title, or two or more others), or the direct conversation with one other user,
/// which exists at most once per pair: asking again returns it with 200. The JSON call and the
/// browser's "new chat" form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class Endpoint(MariaDb db, Envelope envelope, TimeProvider time, RedisCircuit redis, ConversationLimits limits,
    Presence presence, EventLog events, GetConversation.ConversationEvents conversations)
    : Endpoint<Request, ConversationView>
{
    const string NobodyElse = "Name at least one member besides yourself.";
    // Not a username (those are at least 3 characters): the outcome for a group over Conversations:MaxMembers.
    const string TooMany = "";

    public override void Configure()
    {
        Post("/api/conversations", "/c/new");
        ApiAndForm.Configure(Definition);
        // 200 when the direct conversation existed already.
        ApiDocs.Document(Definition, "Open a direct conversation or create a group",
            b => b.Produces<ConversationView>(StatusCodes.Status201Created).Produces<ConversationView>(StatusCodes.Status200OK)
                .ResponseHeader(StatusCodes.Status201Created, "Location", "/api/conversations/{id}: the conversation"), 400, 404, 429);
    }

    // The form has one text field of comma-separated names, and an empty title means none.
    public override void OnBeforeValidate(Request req)
    {
        if (HttpContext.IsApi()) return;
        req.Members = req.Members?.SelectMany(m => m.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        req.Title = string.IsNullOrWhiteSpace(req.Title) ? null : req.Title.Trim();
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            await FormAsync(req, errors, StatusCodes.Status422UnprocessableEntity);
            return;
        }
        var me = User.UserId();
        // Counted before the names are resolved: a creation is one whether or not it succeeds.
        if (await ConversationLimits.TryAsync(HttpContext, redis, "conversation-creates", me, limits.MaxCreates, limits.CreateWindow) is { } wait)
        {
            if (HttpContext.IsApi()) await ConversationLimits.TooManyAsync(HttpContext, "new conversations", wait);
            else
            {
                Problem.RetryAfter(HttpContext, wait);
                await FormAsync(req, [$"Too many new conversations. Try again in {Math.Ceiling(wait.TotalMinutes)} minutes."], StatusCodes.Status429TooManyRequests);
            }
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        var outcome = await CreateAsync(connection, me, req);
        await (HttpContext.IsApi() ? ApiReplyAsync(connection, me, outcome, ct) : FormReplyAsync(req, outcome));
    }

    async Task ApiReplyAsync(MySqlConnection connection, long me, (long? Id, bool Created, string? Unknown) outcome, CancellationToken ct)
    {
        switch (outcome)
        {
            case (_, _, TooMany):
                ThrowError(r => r.Members, limits.TooManyMembers);
                break;
            case (_, _, { } unknown):
                await Problem.WriteAsync(HttpContext, StatusCodes.Status404NotFound, "Unknown user", $"There is no user '{unknown}'.");
                break;
            case (null, _, _):
                ThrowError(r => r.Members, NobodyElse);
                break;
            case ({ } id, var created, _):
                var view = await Conversations.FindAsync(connection, envelope, me, id) is { } found ? await presence.ApplyAsync(found) : null;
                if (created) HttpContext.Response.Headers.Location = $"/api/conversations/{Ids.Of(id)}";
                await Send.ResponseAsync(view!, created ? StatusCodes.Status201Created : StatusCodes.Status200OK, ct);
                break;
        }
    }

    Task FormReplyAsync(Request req, (long? Id, bool Created, string? Unknown) outcome) => outcome switch
    {
        (_, _, TooMany) => FormAsync(req, [limits.TooManyMembers], StatusCodes.Status422UnprocessableEntity),
        (_, _, { } unknown) => FormAsync(req, [$"There is no user '{unknown}'."], StatusCodes.Status404NotFound),
        (null, _, _) => FormAsync(req, [NobodyElse], StatusCodes.Status422UnprocessableEntity),
        ({ } id, _, _) => Layout.RedirectAfterPostAsync(HttpContext, $"/c/{id}"),
    };

    Task FormAsync(Request req, IEnumerable<string> errors, int status) => Layout.SendAsync(HttpContext, "New chat", Fragments.Form(HttpContext, errors, req), status);

    /// <summary>
    /// Creates the group, or finds or creates the direct conversation; Id is null when nobody but
    /// the caller was named, Unknown the first name that matches no user (or <see cref="TooMany"/>).
    /// </summary>
    async Task<(long? Id, bool Created, string? Unknown)> CreateAsync(MySqlConnection connection, long me, Request req)
    {
        var (others, unknown) = await ResolveOthersAsync(connection, me, req.Members!);
        if (unknown is not null) return (null, false, unknown);
        if (others.Length == 0) return (null, false, null);
        if (others.Length + 1 > limits.MaxMembers) return (null, false, TooMany);
        if (others.Length == 1 && req.Title is null)
        {
            var (direct, created) = await Conversations.FindOrCreateDirectAsync(connection, me, others[0], time.UtcNowMillis());
            return (direct, created, null);
        }
        var group = await Sql.CreateGroupAsync(connection, req.Title?.Trim(), [me, .. others], time.UtcNowMillis());
        await conversations.PublishAsync(events, connection, group.Id, group.Members, group.Seqs);
        return (group.Id, true, null);
    }

    /// <summary>The other members' ids, or the first name that matches no user.</summary>
    static async Task<(long[] Others, string? Unknown)> ResolveOthersAsync(MySqlConnection connection, long me, IEnumerable<string> usernames)
    {
        var names = usernames.Select(n => n.Trim().ToLowerInvariant()).Distinct().ToArray();
        var found = await Sql.FindUsersAsync(connection, names);
        var unknown = names.FirstOrDefault(n => found.All(f => f.Username != n));
        return (found.Select(f => f.Id).Where(id => id != me).Order().ToArray(), unknown);
    }
}
