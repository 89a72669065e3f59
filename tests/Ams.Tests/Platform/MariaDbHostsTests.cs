using System.Diagnostics;
using Alba;
using System.Net;
using System.Net.Sockets;
using Ams.Infrastructure;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ams.Tests.Platform;

/// <summary>
/// A fail-over host list (a Galera cluster's form) whose first host hangs: MySqlConnector alone
/// would spend every open's connect timeout on it and never reach the next host.
/// </summary>
public sealed class MariaDbHostsTests(Services services) : IClassFixture<Services>
{
    /// <summary>
    /// The test's MariaDB under a second address (127.0.0.2, same port), relayed byte for byte;
    /// hung, it accepts connections and relays nothing, as a paused server or a network that drops
    /// packets behaves.
    /// </summary>
    sealed class Relay : IAsyncDisposable
    {
        readonly TcpListener listener;
        readonly int port;
        readonly CancellationTokenSource stop = new();
        volatile bool hung;

        public Relay(int port)
        {
            this.port = port;
            listener = new TcpListener(IPAddress.Parse("127.0.0.2"), port);
            listener.Start();
            _ = AcceptAsync();
        }

        public void Hang() => hung = true;

        public void Answer() => hung = false;

        async Task AcceptAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await listener.AcceptTcpClientAsync(stop.Token); }
                catch (OperationCanceledException) { return; }
                _ = RelayAsync(client);
            }
        }

        async Task RelayAsync(TcpClient client)
        {
            using var server = new TcpClient();
            using (client)
                try
                {
                    await server.ConnectAsync(IPAddress.Loopback, port, stop.Token);
                    await Task.WhenAny(PumpAsync(client.GetStream(), server.GetStream()), PumpAsync(server.GetStream(), client.GetStream()));
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
        }

        async Task PumpAsync(NetworkStream from, NetworkStream to)
        {
            var buffer = new byte[16 * 1024];
            while (true)
            {
                while (hung) await Task.Delay(20, stop.Token);
                var read = await from.ReadAsync(buffer, stop.Token);
                if (read == 0) return;
                while (hung) await Task.Delay(20, stop.Token);
                await to.WriteAsync(buffer.AsMemory(0, read), stop.Token);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            listener.Stop();
        }
    }

    /// <summary>A node whose list names the relay first, then the test's MariaDB itself; <paramref name="timeouts"/> end the connection string.</summary>
    async Task<IAlbaHost> NodeBehindAsync(string timeouts, CapturedLogs? logs = null)
    {
        await services.AppAsync();   // the schema
        var list = services.MariaDb.ConnectionString(services.Database).Replace("Server=127.0.0.1;", "Server=127.0.0.2,127.0.0.1;", StringComparison.Ordinal);
        return await services.StartAppAsync(services: s => { if (logs is not null) s.AddSingleton<ILoggerProvider>(logs); },
            settings: [new("ConnectionStrings:MariaDb", list + "LoadBalance=FailOver;" + timeouts)]);
    }

    [Fact]
    public async Task A_hung_first_host_is_passed_over_within_seconds_and_the_node_serves_from_the_next_until_it_answers_again()
    {
        await using var relay = new Relay(services.MariaDb.Port);
        var logs = new CapturedLogs();
        await using var app = await NodeBehindAsync("Connect Timeout=3;Default Command Timeout=5;", logs);
        var db = app.Services.GetRequiredService<MariaDb>();
        Assert.Equal(["127.0.0.2", "127.0.0.1"], db.Hosts.Select(h => h.Name));
        var (alice, bob) = (await app.MemberAsync("fo"), await app.MemberAsync("fo"));
        var conversation = (await app.DirectAsync(alice, bob)).Id();
        await using (var first = await db.OpenConnectionAsync()) Assert.Equal("127.0.0.2", first.DataSource);

        relay.Hang();
        try
        {
            await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("MariaDB server 127.0.0.2 is not answering", StringComparison.Ordinal)), TimeSpan.FromSeconds(6));
            // It takes no new connection either: when every host is passed over, it is tried last.
            await Eventually.TrueAsync(() => db.Hosts[0].Unreachable, TimeSpan.FromSeconds(4));
            Assert.False(db.Hosts[1].Unreachable);
            await using (var next = await db.OpenConnectionAsync()) Assert.Equal("127.0.0.1", next.DataSource);
            var watch = Stopwatch.StartNew();
            Assert.Equal("during the hang", (await app.SendAsync(alice, conversation, "during the hang"))["body"].Str());
            Assert.Equal(200, (await app.GetAsync("/api/conversations", bob.Token, null)).Status());
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"the requests took {watch.Elapsed.TotalSeconds:F1} s");
            // Readiness asks the hosts in the same order: not the hung one first, for 1 s, each poll.
            watch.Restart();
            Assert.Equal(200, (await app.GetAsync("/readyz", null, null)).Status());
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(0.5), $"/readyz took {watch.Elapsed.TotalSeconds:F2} s");
            Assert.False(app.Services.GetRequiredService<MariaDbCircuit>().IsOpen);
        }
        finally
        {
            relay.Answer();
        }
        await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("MariaDB server 127.0.0.2 answers again", StringComparison.Ordinal)), TimeSpan.FromSeconds(6));
        await using (var again = await db.OpenConnectionAsync()) Assert.Equal("127.0.0.2", again.DataSource);
        await app.SendAsync(alice, conversation, "after");
        Assert.Equal(["during the hang", "after"], Chat.Bodies(await app.HistoryAsync(bob, conversation)));
        Assert.DoesNotContain(logs.Lines, l => l.Contains("MariaDB is not answering", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_keyed_send_whose_lookup_waits_on_a_host_that_hangs_answers_503_once_it_is_passed_over_and_its_repeat_goes_to_the_next()
    {
        await using var relay = new Relay(services.MariaDb.Port);
        var logs = new CapturedLogs();
        await using var app = await NodeBehindAsync("Connect Timeout=30;Default Command Timeout=30;", logs);
        var (alice, bob) = (await app.MemberAsync("fk"), await app.MemberAsync("fk"));
        var conversation = (await app.DirectAsync(alice, bob)).Id();

        // Twice: a host that answered again is watched again.
        foreach (var body in new[] { "keyed", "keyed again" })
        {
            var send = new { conversationId = conversation, body };
            relay.Hang();
            var watch = Stopwatch.StartNew();
            try
            {
                // Its Idempotency-Key lookup goes to the first host, not yet passed over.
                var answer = await IdempotencyKeyTests.SendWithKeyAsync(app, alice, send, body.Replace(' ', '-')).WaitAsync(TimeSpan.FromSeconds(20));
                await answer.ProblemAsync(503);
                // The watch (1 s) and its question (1 s), with room for a loaded machine.
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"answered after {watch.Elapsed.TotalSeconds:F1} s");
                await IdempotencyKeyTests.SendWithKeyAsync(app, alice, send, body.Replace(' ', '-'), 201);
                await IdempotencyKeyTests.SendWithKeyAsync(app, alice, send, body.Replace(' ', '-'), 201);
            }
            finally
            {
                relay.Answer();
            }
            await Eventually.TrueAsync(() => logs.Lines.Count(l => l.Contains("MariaDB server 127.0.0.2 answers again", StringComparison.Ordinal)) == (body == "keyed" ? 1 : 2),
                TimeSpan.FromSeconds(6));
        }
        Assert.Equal(["keyed", "keyed again"], Chat.Bodies(await app.HistoryAsync(bob, conversation)));
    }

    [Fact]
    public async Task A_node_starts_while_the_first_host_hangs_its_opens_going_on_to_the_next()
    {
        await using var relay = new Relay(services.MariaDb.Port);
        relay.Hang();
        // The migrations open connections before the watch has asked anything.
        await using var app = await NodeBehindAsync("Connect Timeout=2;");
        var (alice, bob) = (await app.MemberAsync("fs"), await app.MemberAsync("fs"));
        Assert.Equal("started", (await app.SendAsync(alice, (await app.DirectAsync(alice, bob)).Id(), "started"))["body"].Str());
    }

    [Fact]
    public async Task Sends_queued_behind_a_batch_that_hangs_on_a_passed_over_host_go_on_to_the_next_host_and_its_own_answer_503()
    {
        await using var relay = new Relay(services.MariaDb.Port);
        var logs = new CapturedLogs();
        // Commands give up after 60 s: only leaving the batch behind answers the sends behind it sooner.
        await using var app = await NodeBehindAsync("Connect Timeout=3;Default Command Timeout=60;", logs);
        var (alice, bob, carol) = (await app.MemberAsync("fw"), await app.MemberAsync("fw"), await app.MemberAsync("fw"));
        var (held, other) = ((await app.DirectAsync(alice, bob)).Id(), (await app.DirectAsync(alice, carol)).Id());
        await app.SendAsync(alice, held, "before");
        // A transaction of the test's own (straight to 127.0.0.1) holds the conversation, so the
        // next batch waits on the wire through the relay; then the relay hangs under it.
        var (locker, transaction) = await services.LockConversationAsync(held);
        await using var _ = locker;
        var stuck = app.PostAsync("/api/messages", new { conversationId = held, body = "stuck" }, alice.Token, null);
        await Task.Delay(TimeSpan.FromSeconds(0.5));
        relay.Hang();
        try
        {
            var watch = Stopwatch.StartNew();
            var behind = await app.PostAsync("/api/messages", new { conversationId = other, body = "behind" }, alice.Token, null).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(201, behind.Status());
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"the send behind answered after {watch.Elapsed.TotalSeconds:F1} s");
            // Its COMMIT was not sent: it answers now, not when its host answers again, and is never committed.
            Assert.Equal(503, (await stuck.WaitAsync(TimeSpan.FromSeconds(1))).Status());
            Assert.Single(logs.Lines, l => l.Contains("The send batch on MariaDB server 127.0.0.2, which does not answer, is left to finish alone", StringComparison.Ordinal));
            Assert.Single(logs.Lines, l => l.Contains("Sends of the held batch answer 503, and it will not be committed: 1", StringComparison.Ordinal));
            // Its host was passed over as hung, so the batch's wait is no lock wait: it is left at 5 s,
            // not after the 7 s a batch on a server that answers is given (the watch looks once a second).
            const string waited = "A send batch has waited ";
            var stall = Assert.Single(logs.Lines, l => l.Contains(waited, StringComparison.Ordinal));
            Assert.InRange(int.Parse(stall.Split(waited)[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture), 5, 6);
            // The next ones go straight through.
            Assert.Equal("next", (await app.SendAsync(alice, other, "next"))["body"].Str());
        }
        finally
        {
            relay.Answer();
            await transaction.RollbackAsync();
        }
        // The batch left behind ends on its own once its host answers, rolled back.
        await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("The send batch that waited for MariaDB is over after", StringComparison.Ordinal)), TimeSpan.FromSeconds(15));
        Assert.EndsWith(" s: not stored", Assert.Single(logs.Lines, l => l.Contains("The send batch that waited for MariaDB is over after", StringComparison.Ordinal)));
        Assert.Equal(["behind", "next"], Chat.Bodies(await app.HistoryAsync(carol, other)));
        Assert.Equal("after", (await app.SendAsync(alice, held, "after"))["body"].Str());
        Assert.Equal(["before", "after"], Chat.Bodies(await app.HistoryAsync(bob, held)));
    }

    [Fact]
    public async Task Each_host_of_a_list_gets_at_most_5_s_of_the_connect_timeout_and_a_single_server_all_of_it()
    {
        await using var list = new MariaDb("Server=db1,db2;LoadBalance=FailOver;Connect Timeout=15;Database=ams");
        Assert.All(list.Hosts, host => Assert.Equal(5u, new MySqlConnector.MySqlConnectionStringBuilder(host.ConnectionString).ConnectionTimeout));
        await using var single = new MariaDb("Server=db1;Connect Timeout=15;Database=ams");
        Assert.Equal(15u, new MySqlConnector.MySqlConnectionStringBuilder(Assert.Single(single.Hosts).ConnectionString).ConnectionTimeout);
    }

    [Fact]
    public async Task With_every_host_passed_over_a_connection_comes_from_one_that_takes_connections_before_one_that_does_not()
    {
        await services.AppAsync();   // the schema
        await using var relay = new Relay(services.MariaDb.Port);
        relay.Hang();
        var list = services.MariaDb.ConnectionString(services.Database).Replace("Server=127.0.0.1;", "Server=127.0.0.2,127.0.0.1;", StringComparison.Ordinal);
        await using var db = new MariaDb(list + "LoadBalance=FailOver;Connect Timeout=3;");
        // As the watch leaves them while a Galera node hangs and the others hold their queries until they evict it.
        (db.Hosts[0].PassedOver, db.Hosts[0].Unreachable) = (true, true);
        (db.Hosts[1].PassedOver, db.Hosts[1].Unreachable) = (true, false);
        var watch = Stopwatch.StartNew();
        await using (var connection = await db.OpenConnectionAsync()) Assert.Equal("127.0.0.1", connection.DataSource);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"opened after {watch.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task A_Galera_node_outside_the_cluster_a_commit_it_could_not_replicate_and_a_lock_wait_that_timed_out_are_outages_logged_once_not_faults_with_stack_traces()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var outages = app.Services.GetRequiredService<Outages>();
        // MySqlConnector makes these only from a server's answer; the Galera one needs a node outside the primary component.
        static MySqlConnector.MySqlException ServerError(MySqlConnector.MySqlErrorCode code, string state, string message) =>
            (MySqlConnector.MySqlException)Activator.CreateInstance(typeof(MySqlConnector.MySqlException),
                System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance, null, [code, state, message], null)!;
        Assert.True(outages.Refused(ServerError(MySqlConnector.MySqlErrorCode.UnknownCommand, "08S01", "WSREP has not yet prepared node for application use")));
        Assert.True(outages.Refused(ServerError(MySqlConnector.MySqlErrorCode.LockWaitTimeout, "HY000", "Lock wait timeout exceeded; try restarting transaction")));
        Assert.True(outages.Refused(ServerError(MySqlConnector.MySqlErrorCode.ErrorDuringCommit, "HY000",
            "Error while appending streaming replication fragment(provider status: Not connected to Primary Component)")));
        Assert.False(outages.Refused(ServerError(MySqlConnector.MySqlErrorCode.NoSuchTable, "42S02", "Table 'ams.nothing' doesn't exist")));
        Assert.Single(logs.Lines, l => l.Contains("MariaDB is unreachable (WSREP has not yet prepared node", StringComparison.Ordinal));
    }
}
