using System.Globalization;
using System.Text;
using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Features;
using MySqlConnector;

namespace Ams.Features.Events;

public sealed class StreamOptions
{
    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(15);
    /// <summary>Events a stream may fall behind by before it is disconnected (it resumes with Last-Event-ID).</summary>
    public int QueueCapacity { get; set; } = Subscriber.DefaultCapacity;
    /// <summary>Open streams one user may hold on this node; one more gets 429.</summary>
    public int MaxStreamsPerUser { get; set; } = 16;
    /// <summary>Events a resuming stream may replay; a client further behind gets <c>event: reset</c> and goes live.</summary>
    public int MaxReplay { get; set; } = 10_000;
    /// <summary>Events older than this are deleted too (<see cref="Sweeper"/>); a client away longer gets <c>event: reset</c>.</summary>
    public TimeSpan MaxReplayAge { get; set; } = TimeSpan.FromDays(30);
    /// <summary>How often each node deletes the events no stream may replay any more.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>
/// One server-sent event stream: replay from the database after Last-Event-ID, then live events
/// from this node's hub. The subscriber is registered before the replay, and anything at or
/// below the last sequence written is skipped, so the seam between the two loses nothing and
/// doubles nothing. Publications can arrive out of order (two nodes, two writers); a gap in the
/// numbers is filled from the table.
/// </summary>
public sealed class Stream : IDisposable
{
    readonly EventHub hub;
    readonly Presence presence;
    readonly MariaDb db;
    readonly SessionStore sessions;
    readonly StreamOptions options;
    readonly Outages outages;
    readonly ILogger<Stream> logger;
    readonly Dictionary<string, IEventKind> byKind;
    // Open streams per user on this node: each holds a connection, a queue and a subscription.
    readonly System.Collections.Concurrent.ConcurrentDictionary<long, int> open = new();
    // One timer for the node's streams, not a timer and a linked token source per stream and quiet
    // period: with thousands of idle streams those were a few hundred bytes each
    // (docs/benchmarks-history.md, SSE memory). Every stream gets a keep-alive each period, a
    // share of them at each tick: every keep-alive asks Redis whether its session still exists,
    // and 10,000 streams asking at the same instant would be a burst every period.
    readonly Timer keepAlive;
    readonly int keepAliveShares;
    int keepAliveTick;
    // The page's stream says it is alive with an event rather than a comment, as it opens and every
    // period after: a script cannot see comments, and a stream can go silent without closing (a
    // node that hangs, a connection a network dropped without a word). The data is the period in
    // ms; app.js opens the stream again when it hears nothing for two and a half periods.
    readonly string keepAliveEvent;
    // Replays reading MariaDB at once, node-wide. A catch-up after Redis returns, or the streams of
    // a dead node resuming here, can start thousands together: unbounded, they queued for the
    // connection pool ahead of every send (sends took seconds, docs/benchmarks-history.md,
    // 2026-12-03). Bounded, they take their turn and leave the pool to everything else.
    const int ConcurrentReplays = 16;
    readonly SemaphoreSlim replaying = new(ConcurrentReplays);
    internal SemaphoreSlim ReplaySlots => replaying;   // tests hold them

    public Stream(EventHub hub, Presence presence, MariaDb db, SessionStore sessions,
        IEnumerable<IEventKind> kinds, StreamOptions options, Outages outages, ILogger<Stream> logger)
    {
        (this.hub, this.presence, this.db, this.sessions, this.options, this.outages, this.logger) = (hub, presence, db, sessions, options, outages, logger);
        byKind = kinds.ToDictionary(k => k.Name);
        keepAliveEvent = string.Create(CultureInfo.InvariantCulture, $"event: keep-alive\ndata: {(long)options.KeepAlive.TotalMilliseconds}\n\n");
        keepAliveShares = (int)Math.Clamp(options.KeepAlive.TotalMilliseconds / 100, 1, 16);
        var tick = options.KeepAlive / keepAliveShares;
        keepAlive = new Timer(static state =>
        {
            var stream = (Stream)state!;
            stream.hub.OfferKeepAlive((int)((uint)Interlocked.Increment(ref stream.keepAliveTick) % (uint)stream.keepAliveShares), stream.keepAliveShares);
        }, this, tick, tick);
    }

    public void Dispose() => keepAlive.Dispose();

    /// <summary>Not async itself: the stream's one state machine is <see cref="RunCountedAsync"/>, which releases the count.</summary>
    public Task RunAsync(HttpContext http, StreamFormat format, CancellationToken ct)
    {
        if (!TryResumeAfter(http.Request, out var resumeAfter, out var invalid))
            return Problem.WriteAsync(http, StatusCodes.Status400BadRequest, $"Invalid {invalid}",
                $"{invalid} must be the id of an event the stream sent (a whole number from 0 to 9223372036854775807).");
        var session = http.Session();
        if (open.AddOrUpdate(session.UserId, 1, (_, n) => n + 1) > options.MaxStreamsPerUser)
        {
            Release(session.UserId);
            return Problem.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many open event streams",
                $"At most {options.MaxStreamsPerUser} streams per user; close one first.", TimeSpan.FromSeconds(5));
        }
        return RunCountedAsync(http, session, format, resumeAfter, ct);
    }

    void Release(long userId)
    {
        if (open.AddOrUpdate(userId, 0, (_, n) => n - 1) <= 0) open.TryRemove(KeyValuePair.Create(userId, 0));
    }

    async Task RunCountedAsync(HttpContext http, Session session, StreamFormat format, long? resumeAfter, CancellationToken ct)
    {
        try
        {
            var user = await Users.FindByIdAsync(db, session.UserId, ct);
            if (user is null) return;
            var response = http.Response;
            response.ContentType = "text/event-stream; charset=utf-8";
            response.Headers.CacheControl = "no-store";
            response.Headers["X-Accel-Buffering"] = "no";
            http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            // A HEAD's body is never sent, so a stream behind it would hold the client until it gave up.
            if (HeadRequests.WasHead(http))
            {
                await response.StartAsync(ct);
                return;
            }

            var subscriber = hub.Register(user.Id, user.Username, session.Id, format, options.QueueCapacity);
            // A revocation published between this request's authentication and the registration
            // above reached none of this session's streams; any later one reaches this one. So the
            // session is looked up once more, now (an outside check kept 7 of 80 streams that
            // opened during a logout, each receiving what was sent after it).
            if (!await sessions.ExistsAsync(session.Id))
            {
                hub.Unregister(subscriber);
                await http.ChallengeAsync(SessionAuthentication.SchemeName);
                return;
            }
            subscriber.OnOverflow = http.Abort;
            await presence.ConnectedAsync(user.Username);
            try
            {
                var last = resumeAfter ?? await LatestAsync(user.Id, ct);
                await response.WriteAsync(format == StreamFormat.Html ? keepAliveEvent : ": connected\n\n", ct);
                await response.Body.FlushAsync(ct);
                // Starting live needs no replay: every number up to the latest is already committed.
                if (resumeAfter is not null)
                {
                    // Replay is bounded: a client too far behind is told to reload, then goes live. The
                    // reset carries the latest id, so its next reconnect resumes from there. So is a
                    // client ahead of every stored event (a stale or mistyped id, a server restored
                    // from an older backup): the events numbered up to its id would never reach it.
                    var latest = await LatestAsync(user.Id, ct);
                    if (latest - last > options.MaxReplay || last > latest) last = await ResetAsync(response, latest, ct);
                    else last = await ReplayAsync(response, subscriber, last, ct);
                }
                // Every ready event is written before a single flush, so a burst costs one flush per
                // stream rather than one per event. Keep-alives come through the queue too (the node's timer).
                while (!ct.IsCancellationRequested)
                {
                    subscriber.Delivered = last;   // what a catch-up compares with the latest stored event
                    if (!await subscriber.Reader.WaitToReadAsync(ct)) break;   // closed: logout or overflow
                    var revoked = false;
                    var keepAlive = false;
                    while (subscriber.Reader.TryRead(out var item))
                    {
                        if (ReferenceEquals(item, Outgoing.KeepAlive)) keepAlive = true;
                        else if (item.Event is null)
                        {
                            // A catch-up after this node lost Redis: the revocation may have been published
                            // while it could not hear, so the session is checked before anything is replayed.
                            subscriber.CatchUpTaken();
                            if (revoked = !await sessions.ConfirmAsync(session.Id, ct)) break;
                            if (!ReferenceEquals(item, Outgoing.ConfirmSession)) last = await ReplayAsync(response, subscriber, last, ct);
                        }
                        else if (item.Seq == 0)
                        {
                            // Ephemeral (never stored): written as it comes, without an id, and the resume point stays.
                            await WriteAsync(response, subscriber, 0, item.Event, ct);
                        }
                        else if (item.Seq > last + 1)
                        {
                            // A user's numbers have no holes, and a number is only taken once the one
                            // before it is committed. So an earlier event whose publication has not
                            // arrived yet (published later by another writer or node) is already in
                            // the table: replay from there, in order; its late copy is then skipped.
                            last = await ReplayAsync(response, subscriber, last, ct);
                        }
                        else if (item.Seq > last)
                        {
                            await WriteAsync(response, subscriber, item.Seq, item.Event, ct);
                            last = item.Seq;
                        }
                    }
                    if (keepAlive && !revoked)
                    {
                        if (!await sessions.ExistsAsync(session.Id)) break;
                        await response.WriteAsync(format == StreamFormat.Html ? keepAliveEvent : ": keep-alive\n\n", ct);
                    }
                    await response.Body.FlushAsync(ct);
                    if (revoked) break;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // The client went away, or fell behind: an overflow aborts the request.
            }
            catch (Exception e) when (response.HasStarted && outages.Refused(e))
            {
                // MariaDB or Redis failed under a stream already answered (a replay, a session check):
                // it ends, the client resumes with Last-Event-ID, and the outage is logged once, not
                // as an unhandled exception per stream.
                http.Abort();
            }
            finally
            {
                if (subscriber.Overflowed)
                    logger.LogInformation("Event stream of user {UserId} fell {Capacity} events behind and was closed; it resumes with Last-Event-ID",
                        user.Id, subscriber.Capacity);
                subscriber.OnOverflow = null;   // the request is over: nothing may abort it (or the next on its connection) now
                hub.Unregister(subscriber);
                await presence.DisconnectedAsync(user.Id, user.Username);
            }
        }
        finally
        {
            Release(session.UserId);
        }
    }

    /// <summary>
    /// Last-Event-ID resumes a stream. A first connection may say where its page left off with
    /// <c>?after=</c> (the chat page renders it, so nothing between page and stream is lost);
    /// otherwise (null) the stream starts live: replaying a user's whole history to every new tab
    /// would cost as much as the history is long. A value that is no event id is refused (400) rather
    /// than taken for none: the stream would start live and the client would never learn why its
    /// missed events did not come.
    /// </summary>
    static bool TryResumeAfter(HttpRequest request, out long? resumeAfter, out string invalid)
    {
        resumeAfter = null;
        invalid = "";
        foreach (var (name, value) in (ReadOnlySpan<(string, string)>)[("Last-Event-ID", request.Headers["Last-Event-ID"].ToString()), ("after", request.Query["after"].ToString())])
        {
            if (value.Length == 0) continue;
            if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                invalid = name;
                return false;
            }
            resumeAfter ??= id;   // Last-Event-ID first: a reconnecting EventSource sends it with the page's ?after= still on the URL
        }
        return true;
    }

    async Task<long> LatestAsync(long userId, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await EventLog.LatestAsync(connection, userId);
    }

    async Task<long> ReplayAsync(HttpResponse response, Subscriber subscriber, long last, CancellationToken ct)
    {
        var total = 0;
        while (true)
        {
            List<StoredEvent> page;
            long? swept = null;
            var replayed = new Dictionary<long, LiveEvent?>();
            await TakeReplaySlotAsync(subscriber, ct);
            try
            {
                await using var connection = await db.OpenConnectionAsync(ct);
                page = await Sql.AfterAsync(connection, subscriber.UserId, last);
                // A user's numbers have no holes, so a missing next one was deleted as too old to
                // replay (Sweeper), maybe by a node with a smaller MaxReplay than this one's.
                if (page.Count > 0 && page[0].Seq != last + 1)
                {
                    swept = await EventLog.LatestAsync(connection, subscriber.UserId);
                    page = [];
                }
                // A conversation the user has left or was removed from replays nothing but the
                // conversation events that say so: its messages are no longer theirs to read.
                var left = await Sql.LeftAsync(connection, subscriber.UserId, page.Select(e => e.ConversationId));
                // Each kind rebuilds its own events, in one query per kind and page.
                foreach (var group in page.Where(e => !left.Contains(e.ConversationId) || e.Kind == GetConversation.ConversationEvents.Kind)
                    .GroupBy(e => e.Kind))
                {
                    var events = group.ToList();
                    if (!byKind.TryGetValue(group.Key, out var kind))
                    {
                        logger.LogWarning("Skipping {Count} stored events of unknown kind {Kind}", events.Count, group.Key);
                        continue;
                    }
                    var lives = await kind.ReplayAsync(connection, subscriber.UserId, events);
                    for (var i = 0; i < events.Count; i++) replayed[events[i].Seq] = lives[i];
                }
            }
            finally
            {
                replaying.Release();
            }
            if (swept is { } latest) return await ResetAsync(response, latest, ct);
            foreach (var stored in page)
            {
                if (replayed.GetValueOrDefault(stored.Seq) is { } live)
                {
                    await WriteAsync(response, subscriber, stored.Seq, live, ct);
                    total++;
                }
                last = stored.Seq;
            }
            await response.Body.FlushAsync(ct);
            if (page.Count >= Sql.PageSize) continue;
            AmsMetrics.ReplaySize.Record(total);
            return last;
        }
    }

    /// <summary>Tells the client to reload, then goes on live after <paramref name="latest"/>; returns it.</summary>
    static async Task<long> ResetAsync(HttpResponse response, long latest, CancellationToken ct)
    {
        // An empty data line: EventSource drops an event that has none, so the page never reloaded.
        await response.WriteAsync($"id: {latest.ToString(CultureInfo.InvariantCulture)}\nevent: reset\ndata:\n\n", ct);
        await response.Body.FlushAsync(ct);
        return latest;
    }

    /// <summary>
    /// Waits for one of the node's replay slots, reading the stream's queue meanwhile: behind a large
    /// catch-up the wait can be long, and a full queue would close the stream. What it takes off
    /// is not needed: a stored event was committed before it was published, so the replay that
    /// follows reads it from MariaDB anyway; a typing notice would be stale, a keep-alive is
    /// moot while the stream is about to write. A catch-up taken here is replaced by its session
    /// check, queued again, since the replay does the rest of it.
    /// </summary>
    async Task TakeReplaySlotAsync(Subscriber subscriber, CancellationToken ct)
    {
        var slot = replaying.WaitAsync(ct);
        if (slot.IsCompleted)
        {
            await slot;
            return;
        }
        var confirmSession = false;
        using (var waiting = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            while (true)
            {
                var readable = subscriber.Reader.WaitToReadAsync(waiting.Token).AsTask();
                // A slot; or a closed queue, or the request ended (the slot's wait ends with it).
                if (await Task.WhenAny(slot, readable) == slot || !readable.IsCompletedSuccessfully || !readable.Result) break;
                while (subscriber.Reader.TryRead(out var item))
                    if (item.Event is null && !ReferenceEquals(item, Outgoing.KeepAlive))
                    {
                        subscriber.CatchUpTaken();
                        confirmSession = true;
                    }
            }
            waiting.Cancel();   // the read still waiting, if the slot came first
        }
        await slot;
        if (confirmSession) subscriber.OfferCatchUp(Outgoing.ConfirmSession);
    }

    /// <summary>One event frame (without <c>id:</c> for an ephemeral one, seq 0); the caller flushes.</summary>
    async Task WriteAsync(HttpResponse response, Subscriber subscriber, long seq, LiveEvent live, CancellationToken ct)
    {
        string data;
        if (subscriber.Format == StreamFormat.Json) data = live.Payload;
        else if (byKind.TryGetValue(live.Kind, out var kind)) data = kind.Html(live, subscriber.Username);
        else return;   // a kind this node does not know yet (a newer node published it): the browser could not show it
        var frame = new StringBuilder(data.Length + 64);
        if (seq > 0) frame.Append("id: ").Append(seq.ToString(CultureInfo.InvariantCulture)).Append('\n');
        frame.Append("event: ").Append(live.Kind).Append('\n');
        foreach (var line in data.Split('\n')) frame.Append("data: ").Append(line).Append('\n');
        frame.Append('\n');
        await response.WriteAsync(frame.ToString(), ct);
    }
}
