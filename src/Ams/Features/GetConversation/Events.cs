using System.Text.Json;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.GetConversation;

/// <summary>
/// <c>event: conversation</c>: the <c>conversation</c> after a rename or a membership change
/// (add, remove, leave), for every member and for the one who left or was removed. Each recipient
/// gets the conversation as they see it (their own unread count and last message); someone no
/// longer in it gets title, owner and the members now, with no message and nothing unread.
/// </summary>
public sealed class ConversationEvents(Envelope envelope, Presence presence) : EventKind<ConversationView>(Kind, AppJsonContext.Default.ConversationView)
{
    public const string Kind = "conversation";

    /// <summary>
    /// The browser's fragment: the panel header's title and members, marked with whether the
    /// viewer still belongs (app.js refreshes the list and leaves a conversation they are out of).
    /// </summary>
    protected override string Html(ConversationView payload, string viewerUsername) => Ams.Infrastructure.Html.Of($"""
        <section class="conversation-update" data-conversation="{payload.Id}" data-member="{(payload.Members.Any(m => m.Username == viewerUsername) ? "true" : "false")}"><h2>{Chat.Fragments.Title(payload, viewerUsername)}</h2><p class="members">{string.Join(", ", payload.Members.Select(m => "@" + m.Username))}</p></section>
        """).Value.Trim();

    // Replay always asks per recipient (below).
    protected override Task<ConversationView?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events) =>
        Task.FromResult(new ConversationView?[events.Count]);

    /// <summary>
    /// A replay shows the conversation as it is now, as this recipient sees it; to someone no longer
    /// in it, only that they are out (its id and kind, no title, owner or members): what it became
    /// after they left is none of theirs.
    /// </summary>
    protected override async Task<ConversationView?[]> LoadAsync(MySqlConnection connection, long userId, IReadOnlyList<StoredEvent> events)
    {
        var views = new Dictionary<long, ConversationView?>();
        foreach (var id in events.Select(e => e.ConversationId).Distinct())
            views[id] = await Conversations.FindAsync(connection, envelope, userId, id)
                ?? (await Conversations.OutsiderViewAsync(connection, envelope, id) is { } outside ? outside with { Title = null, Owner = null, Members = [] } : null);
        var known = views.Values.OfType<ConversationView>().ToList();
        var applied = (await presence.ApplyAsync(known)).ToDictionary(v => v.Id);
        return events.Select(e => views[e.ConversationId] is { } v ? applied[v.Id] : null).ToArray();
    }

    /// <summary>
    /// After the commit that stored <paramref name="seqs"/> for <paramref name="recipients"/>: each
    /// recipient's view, published once per distinct payload.
    /// </summary>
    public async Task PublishAsync(EventLog log, MySqlConnection connection, long conversationId, long[] recipients, long[] seqs)
    {
        var views = await Conversations.ForMembersAsync(connection, envelope, conversationId);
        if (views.Count > 0)
        {
            var online = (await presence.ApplyAsync(views.Values.Take(1).ToList()))[0].Members;
            foreach (var user in views.Keys.ToList()) views[user] = views[user] with { Members = online };
        }
        ConversationView? outsider = null;
        var groups = new Dictionary<string, (ConversationView View, List<long> Users, List<long> Seqs)>();
        for (var i = 0; i < recipients.Length; i++)
        {
            if (!views.TryGetValue(recipients[i], out var view))
                view = outsider ??= await Conversations.OutsiderViewAsync(connection, envelope, conversationId) is { } o ? await presence.ApplyAsync(o) : null;
            if (view is null) continue;
            var json = JsonSerializer.Serialize(view, AppJsonContext.Default.ConversationView);
            if (!groups.TryGetValue(json, out var group)) groups[json] = group = (view, [], []);
            group.Users.Add(recipients[i]);
            group.Seqs.Add(seqs[i]);
        }
        foreach (var (view, users, numbers) in groups.Values) await log.PublishAsync(Live([.. users], [.. numbers], view));
    }
}
