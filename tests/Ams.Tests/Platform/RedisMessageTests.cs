namespace Ams.Tests.Platform;

/// <summary>Redis.Brief: a Redis failure in the log says what went wrong, without the client's diagnostics.</summary>
public sealed class RedisMessageTests
{
    // As StackExchange.Redis 3.4 words them (from an outside check's logs and its timeouts).
    const string Closed = "No connection is active/available to service this operation: SPUBLISH; SocketClosed on 127.0.0.1:6391/Subscription, Idle/RanToCompletion, last: PING, origin: ReadAllAsync, outstanding: 0, last-read: 0s ago, last-write: 1s ago, keep-alive: 60s, state: ConnectedEstablished, in: 0, in-pipe: 0, last-heartbeat: 0s ago, last-mbeat: 0s ago, global: 0s ago, v: 3.4.35.20751, mc: 1/1/0, clientName: vm(SE.Redis-v3.4.35.20751), IOCP: (Busy=0,Free=1000,Min=1,Max=1000), WORKER: (Busy=3,Free=32764,Min=2,Max=32767), POOL: (Threads=4,QueuedItems=1,CompletedItems=307906,Timers=13), v: 3.4.35.20751";
    const string Dropped = "SocketClosed on 127.0.0.1:6397/Interactive, Idle/RanToCompletion, last: EVAL, origin: ReadAllAsync, outstanding: 1, last-read: 0s ago, last-write: 0s ago, unanswered-write: 0s ago, keep-alive: 60s, state: ConnectedEstablished, in: 0, in-pipe: 0, last-heartbeat: 0s ago, last-mbeat: 0s ago, global: 0s ago, v: 3.4.35.20751";
    const string TimedOut = "Timeout performing EVAL (1000ms), next: EVAL, inst: 0, qu: 0, qs: 1, aw: False, bw: Inactive, rs: ReadAsync, ws: Idle, in: 0, serverEndpoint: 127.0.0.1:6391, mc: 1/1/0, mgr: 10 of 10 available, clientName: vm, IOCP: (Busy=0,Free=1000,Min=1,Max=1000), v: 3.4.35.20751";

    [Theory]
    [InlineData(Closed, "No connection is active/available to service this operation: SPUBLISH; SocketClosed on 127.0.0.1:6391/Subscription")]
    [InlineData(Dropped, "SocketClosed on 127.0.0.1:6397/Interactive")]
    [InlineData(TimedOut, "Timeout performing EVAL (1000ms)")]
    // AMS's own words, commas and all, stay whole.
    [InlineData("Redis at 127.0.0.1:7001 is not answering, for 1 s", "Redis at 127.0.0.1:7001 is not answering, for 1 s")]
    public void A_message_keeps_what_went_wrong_and_drops_the_diagnostics(string message, string brief) =>
        Assert.Equal(brief, Ams.Infrastructure.Redis.Brief(new StackExchange.Redis.RedisException(message)));
}
