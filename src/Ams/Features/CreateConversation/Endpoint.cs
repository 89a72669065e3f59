using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.CreateConversation;

/// <summary>
/// A group (title, or two or more others), or the direct conversation with one other user,
/// which exists at most once per pair: asking again returns it with 200.
/// </summary>
public sealed class Endpoint(MySqlDataSource db, Envelope envelope, TimeProvider time) : Endpoint<Request, ConversationView>
{
    public override void Configure()
    {
        Post("/api/conversations");
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var me = User.UserId();
        await using var connection = await db.OpenConnectionAsync(ct);
        var (others, unknown) = await ResolveOthersAsync(connection, me, req.Members!);
        if (unknown is not null)
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status404NotFound, "Unknown user", $"There is no user '{unknown}'.");
            return;
        }
        if (others.Length == 0) ThrowError(r => r.Members, "Name at least one member besides yourself.");

        var (id, created) = others.Length == 1 && req.Title is null
            ? await Conversations.FindOrCreateDirectAsync(connection, me, others[0], time.UtcNowMillis())
            : (await Sql.CreateGroupAsync(connection, req.Title, [me, .. others], time.UtcNowMillis()), true);
        var view = await Conversations.FindAsync(connection, envelope, me, id);
        await Send.ResponseAsync(view!, created ? StatusCodes.Status201Created : StatusCodes.Status200OK, ct);
    }

    /// <summary>The other members' ids, or the first name that matches no user.</summary>
    internal static async Task<(long[] Others, string? Unknown)> ResolveOthersAsync(MySqlConnection connection, long me, IEnumerable<string> usernames)
    {
        var names = usernames.Select(n => n.Trim().ToLowerInvariant()).Distinct().ToArray();
        var found = await Sql.FindUsersAsync(connection, names);
        var unknown = names.FirstOrDefault(n => found.All(f => f.Username != n));
        return (found.Select(f => f.Id).Where(id => id != me).Order().ToArray(), unknown);
    }
}
