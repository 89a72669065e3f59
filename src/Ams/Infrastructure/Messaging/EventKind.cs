using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using MySqlConnector;

namespace Ams.Infrastructure.Messaging;

/// <summary>An event as the <c>events</c> table holds it for one recipient.</summary>
public sealed record StoredEvent(long Seq, string Kind, long ConversationId, long SubjectId, long ActorId);

/// <summary>
/// A kind of live event, implemented by the slice that owns it: that slice makes the payload,
/// renders it for the browser and rebuilds it for a replay. Streams and the hub only carry it.
/// </summary>
public interface IEventKind
{
    string Name { get; }

    /// <summary>The browser's HTML fragment of the event, for one viewer.</summary>
    string Html(LiveEvent live, string viewerUsername);

    /// <summary>
    /// The stored events of this kind for one recipient, as live events again (same order);
    /// null for one whose subject is gone, which the stream skips.
    /// </summary>
    Task<LiveEvent?[]> ReplayAsync(MySqlConnection connection, long userId, IReadOnlyList<StoredEvent> events);
}

/// <summary>An event kind whose payload is <typeparamref name="T"/>, serialized by its slice's JSON context.</summary>
public abstract class EventKind<T>(string name, JsonTypeInfo<T> json) : IEventKind where T : class
{
    // What the JSON event stream sends as data: written as the API's responses are.
    readonly JsonTypeInfo<T> payloadJson = ReadableJsonEncoder.Of(json);

    public string Name => name;

    public LiveEvent Live(long[] userIds, long[] seqs, T payload) =>
        new(name, userIds, seqs, JsonSerializer.Serialize(payload, payloadJson)) { Parsed = payload };

    /// <summary>
    /// An event that is never stored: no number (every seq 0), so streams write it without an
    /// <c>id:</c>, only to those connected now, and never replay it.
    /// </summary>
    public LiveEvent Ephemeral(long[] userIds, T payload) => Live(userIds, new long[userIds.Length], payload);

    public string Html(LiveEvent live, string viewerUsername) =>
        Html((T)(live.Parsed ??= JsonSerializer.Deserialize(live.Payload, payloadJson)!), viewerUsername);

    public async Task<LiveEvent?[]> ReplayAsync(MySqlConnection connection, long userId, IReadOnlyList<StoredEvent> events)
    {
        var payloads = await LoadAsync(connection, userId, events);
        return events.Select((e, i) => payloads[i] is { } payload ? Live([userId], [e.Seq], payload) : null).ToArray();
    }

    protected abstract string Html(T payload, string viewerUsername);

    /// <summary>The payloads of stored events, in order; null where the subject is gone.</summary>
    protected abstract Task<T?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events);

    /// <summary>
    /// The payloads of one recipient's stored events. The same for every recipient unless a kind's
    /// payload depends on who reads it (a conversation's unread count).
    /// </summary>
    protected virtual Task<T?[]> LoadAsync(MySqlConnection connection, long userId, IReadOnlyList<StoredEvent> events) =>
        LoadAsync(connection, events);
}
