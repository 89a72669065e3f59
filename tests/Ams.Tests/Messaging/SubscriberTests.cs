using Ams.Infrastructure.Messaging;

namespace Ams.Tests.Messaging;

/// <summary>The per-stream queue that keeps one slow client from holding up the rest.</summary>
public sealed class SubscriberTests
{
    static Outgoing Item(long seq) => new(seq, new LiveEvent("read", [1], [seq], "{}"));

    [Fact]
    public async Task A_full_queue_disconnects_the_stream_once_and_keeps_what_was_queued()
    {
        var aborted = 0;
        var subscriber = new Subscriber(1, "u", "s", StreamFormat.Json, capacity: 3) { OnOverflow = () => aborted++ };
        for (var seq = 1; seq <= 3; seq++) subscriber.Offer(Item(seq));
        Assert.False(subscriber.Overflowed);
        subscriber.Offer(Item(4));
        subscriber.Offer(Item(5));
        Assert.True(subscriber.Overflowed);
        Assert.Equal(1, aborted);
        var drained = new List<long>();
        await foreach (var item in subscriber.Reader.ReadAllAsync()) drained.Add(item.Seq);
        Assert.Equal([1, 2, 3], drained);
    }

    [Fact]
    public void Offering_to_a_stream_nobody_reads_returns_at_once_instead_of_waiting()
    {
        // Offer is called from the Redis subscription callback shared by every stream on the node:
        // if it waited for room, this loop (and the node's whole fan-out) would hang here.
        var subscriber = new Subscriber(1, "u", "s", StreamFormat.Json, capacity: 2);
        for (var seq = 1; seq <= 10_000; seq++) subscriber.Offer(Item(seq));
        Assert.True(subscriber.Overflowed);
    }

    [Fact]
    public void A_catch_up_still_queued_is_not_queued_again_and_a_replay_outranks_a_session_check()
    {
        var subscriber = new Subscriber(1, "u", "s", StreamFormat.Json);
        List<Outgoing> Drain()
        {
            var items = new List<Outgoing>();
            while (subscriber.Reader.TryRead(out var item)) items.Add(item);
            return items;
        }
        subscriber.OfferCatchUp(Outgoing.ConfirmSession);
        subscriber.OfferCatchUp(Outgoing.ConfirmSession);
        subscriber.OfferCatchUp(Outgoing.CatchUp);   // more than the queued session check: queued too
        subscriber.OfferCatchUp(Outgoing.CatchUp);
        subscriber.OfferCatchUp(Outgoing.ConfirmSession);
        Assert.Equal([Outgoing.ConfirmSession, Outgoing.CatchUp], Drain());

        subscriber.OfferCatchUp(Outgoing.CatchUp);
        Assert.Empty(Drain());   // the stream has not taken the last one yet
        subscriber.CatchUpTaken();
        subscriber.OfferCatchUp(Outgoing.CatchUp);
        Assert.Equal([Outgoing.CatchUp], Drain());
    }

    [Fact]
    public void Offering_to_a_closed_stream_is_no_overflow_and_aborts_nothing()
    {
        var aborted = 0;
        var subscriber = new Subscriber(1, "u", "s", StreamFormat.Json) { OnOverflow = () => aborted++ };
        subscriber.Close();   // a logout: the stream's request ends, its connection may serve the next one
        subscriber.Offer(Item(1));
        subscriber.OfferCatchUp(Outgoing.CatchUp);
        Assert.False(subscriber.Overflowed);
        Assert.Equal(0, aborted);
    }

    [Fact]
    public void Offers_racing_on_a_full_queue_disconnect_the_stream_once()
    {
        // Offers come from the node's Redis callback and from catch-ups on the thread pool at once;
        // the abort must not run twice (the second could hit the next request on the connection).
        // Eight threads offer to the same full queue together, round after round.
        const int rounds = 20_000, racers = 8;
        var aborts = new int[rounds];
        var subscribers = Enumerable.Range(0, rounds).Select(round =>
        {
            var subscriber = new Subscriber(1, "u", "s", StreamFormat.Json, capacity: 1) { OnOverflow = () => Interlocked.Increment(ref aborts[round]) };
            subscriber.Offer(Item(1));
            return subscriber;
        }).ToArray();
        using var start = new Barrier(racers);
        var threads = Enumerable.Range(0, racers).Select(r => new Thread(() =>
        {
            for (var round = 0; round < rounds; round++)
            {
                start.SignalAndWait();
                subscribers[round].Offer(Item(2 + r));
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.All(subscribers, s => Assert.True(s.Overflowed));
        Assert.Equal(0, aborts.Count(n => n != 1));
    }
}
