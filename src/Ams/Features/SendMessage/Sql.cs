using System.Globalization;
using System.Text;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.SendMessage;

static class Sql
{
    public static Task<long?> FindUserAsync(MySqlConnection connection, string username) => Users.CouldExist(username)
        ? connection.QuerySingleOrDefaultAsync<long?>("SELECT id FROM users WHERE username = @username", new { username }, commandTimeout: connection.CommandTimeout())
        : Task.FromResult<long?>(null);

    /// <summary>A send; its attachments are already claimed for it (message_id 0, see Endpoint) and are linked in its transaction.</summary>
    public sealed record Pending(long ConversationId, long SenderId, string Body, long[] Attachments, IdempotencyKeys.Key? Key = null);

    public sealed record Stored(long Id, MemberView Sender, long[] Recipients, long[] Seqs, string Entropy, DateTime SentAt);

    const string ItemsTable = "JSON_TABLE(@items, '$[*]' COLUMNS (o INT PATH '$.o', c BIGINT UNSIGNED PATH '$.c', s BIGINT UNSIGNED PATH '$.s')) AS i";

    /// <summary>
    /// Stores a batch of sends in one transaction and three round trips: the sealed messages, an
    /// event for every member, and each conversation's new activity. Returns, in batch order,
    /// what was stored, or null for a sender who is not a member of the conversation.
    /// Locking the conversations (ascending) orders each one's message ids with their commits.
    /// Round trip 1 turns autocommit off first: a transaction that the
    /// server aborts in the middle of a multi-statement batch (a Galera node's brute-force abort
    /// for a conflicting write set applied from another node) does not stop the batch; the
    /// statements after it run on, outside that transaction. With autocommit off they only open a
    /// new transaction, which nothing commits: the COMMIT is its own round trip, sent only after
    /// every result of the batches came back without an error and the last batch found its own
    /// messages (see <see cref="AbortedUnderBatch"/>). On any error the transaction is rolled back before the
    /// exception leaves, so a pooled connection never keeps its locks; when the connection fails
    /// instead, whether the COMMIT happened is unknown (see GroupCommit).
    /// </summary>
    public static async Task<Stored?[]> StoreAsync(MySqlConnection connection, Envelope envelope, IReadOnlyList<Pending> batch, DateTime now, Func<bool> mayCommit,
        int lockWaitSeconds = LockWaitSeconds)
    {
        try
        {
            return await StoreInTransactionAsync(connection, envelope, batch, now, mayCommit, lockWaitSeconds);
        }
        catch
        {
            if (connection.State == System.Data.ConnectionState.Open)
                try
                {
                    await using var rollback = new MySqlCommand($"ROLLBACK; {DefaultSession}", connection);
                    await rollback.ExecuteNonQueryAsync();
                }
                catch (MySqlException)
                {
                    // The connection is broken, and the server rolls back when it notices.
                }
            throw;
        }
    }

    /// <summary>
    /// Round trip 1's session settings undone, in the round trip that ends the transaction: pooled
    /// connections are not reset (see MariaDb.Host), and the next user of this one would otherwise
    /// autocommit nothing.
    /// </summary>
    const string DefaultSession = "SET SESSION autocommit = 1, innodb_lock_wait_timeout = DEFAULT";

    /// <summary>How long a batch waits for a row locked elsewhere before MariaDB refuses it (README: "locked elsewhere for more than 5 s").</summary>
    public const int LockWaitSeconds = 5;

    static async Task<Stored?[]> StoreInTransactionAsync(MySqlConnection connection, Envelope envelope, IReadOnlyList<Pending> batch, DateTime now, Func<bool> mayCommit,
        int lockWaitSeconds)
    {
        // The plans matter: every statement is driven by its JSON list (STRAIGHT_JOIN) with primary
        // key lookups into the tables (FORCE INDEX: on a small table the optimizer would rather
        // scan, and a scan in a locking statement locks every row it passes). So a batch locks
        // only its own rows (ascending: the lists are sorted), inserts in batch order, and never
        // sorts; ordering is left to this code. Each statement costs MariaDB a parse, a plan and
        // a reply, which is most of its time at this size, so there are as few as the job allows.

        // Round trip 1: lock the conversations, then the senders' membership rows (exclusively at
        // once: the INSERT below would take them shared, and upgrading that in round trip 2 for
        // the read mark deadlocks with a MarkRead of the same row); insert a placeholder row for
        // each send whose sender is a member (its batch position parked in `entropy` to match the
        // returned ids); read the members with their names. A message is never dated before its
        // conversation's last activity: a batch that waited for the lock, or a node whose clock
        // is behind, must not make history's times run backwards.
        var items = new StringBuilder("[");
        for (var i = 0; i < batch.Count; i++)
            items.Append(CultureInfo.InvariantCulture, $"{(i > 0 ? "," : "")}{{\"o\":{i},\"c\":{batch[i].ConversationId},\"s\":{batch[i].SenderId}}}");
        items.Append(']');
        var ids = new long[batch.Count];
        var sentAt = new DateTime[batch.Count];
        var members = new Dictionary<long, List<long>>();
        var names = new Dictionary<long, MemberView>();
        // The session settings ride in round trip 1, and are undone in the last (DefaultSession),
        // rather than round trips of their own: at a few hundred sends a second most batches start
        // an idle writer. A conversation locked elsewhere holds up this node's sends (one writer
        // for all of them) for seconds, not the 50 s default.
        await using (var first = new MySqlCommand($"""
            SET SESSION autocommit = 0, innodb_lock_wait_timeout = {lockWaitSeconds};
            START TRANSACTION;
            SELECT STRAIGHT_JOIN c.id FROM {SqlLists.IdsTable} JOIN conversations c FORCE INDEX (PRIMARY) ON c.id = ids.id FOR UPDATE;
            SELECT STRAIGHT_JOIN cm.user_id FROM {ItemsTable}
                JOIN conversation_members cm FORCE INDEX (PRIMARY) ON cm.conversation_id = i.c AND cm.user_id = i.s FOR UPDATE;
            INSERT INTO messages (conversation_id, sender_id, body, entropy, sent_at)
                SELECT STRAIGHT_JOIN i.c, i.s, '', i.o, GREATEST(@now, c.last_activity_at)
                FROM {ItemsTable}
                JOIN conversation_members cm FORCE INDEX (PRIMARY) ON cm.conversation_id = i.c AND cm.user_id = i.s
                JOIN conversations c FORCE INDEX (PRIMARY) ON c.id = i.c
                RETURNING id, entropy, sent_at;
            SELECT STRAIGHT_JOIN cm.conversation_id, cm.user_id, u.username, u.display_name
                FROM {SqlLists.IdsTable}
                JOIN conversation_members cm FORCE INDEX (PRIMARY) ON cm.conversation_id = ids.id
                JOIN users u FORCE INDEX (PRIMARY) ON u.id = cm.user_id;
            """, connection))
        {
            first.Parameters.AddWithValue("@ids", SqlLists.Ids(batch.Select(p => p.ConversationId).Distinct().Order()));
            first.Parameters.AddWithValue("@items", items.ToString());
            first.Parameters.AddWithValue("@now", now);
            await using var reader = await first.ExecuteReaderAsync();
            while (await reader.ReadAsync()) { }
            await reader.NextResultAsync();
            while (await reader.ReadAsync()) { }
            await reader.NextResultAsync();
            while (await reader.ReadAsync())
            {
                var position = int.Parse(reader.GetString(1), CultureInfo.InvariantCulture);
                ids[position] = reader.GetInt64(0);
                sentAt[position] = reader.GetDateTime(2);
            }
            await reader.NextResultAsync();
            while (await reader.ReadAsync())
            {
                var (conversation, user) = (reader.GetInt64(0), reader.GetInt64(1));
                if (!members.TryGetValue(conversation, out var list)) members[conversation] = list = [];
                list.Add(user);
                names.TryAdd(user, new MemberView(reader.GetString(2), reader.GetString(3)));
            }
            // An error the server reports after the last result (an abort it noticed late) throws here.
            while (await reader.NextResultAsync()) { }
        }
        foreach (var list in members.Values) list.Sort();
        var stored = new Stored?[batch.Count];
        if (ids.All(id => id == 0))
        {
            await using var commit = new MySqlCommand($"COMMIT; {DefaultSession}", connection);
            await commit.ExecuteNonQueryAsync();
            return stored;
        }

        // Round trip 2: the data keys and sealed bodies; each conversation's activity with each
        // sender's own read mark; one event per member, numbered by the members' counters (locked
        // here, after the read marks, in the order MarkRead takes them too); and the check that
        // the transaction still holds its messages. Round trip 3: the commit.
        await using var second = new MySqlCommand { Connection = connection };
        var keys = new StringBuilder("INSERT INTO data_keys (id, kek_id, wrapped, entropy, created_at) VALUES ");
        // An UPDATE of the rows round trip 1 inserted, never an insert: in a transaction that lost
        // them (see AbortedUnderBatch) it finds nothing, rather than writing the messages again.
        var bodies = new StringBuilder("UPDATE messages FORCE INDEX (PRIMARY) SET body = CASE id");
        var entropies = new StringBuilder(", entropy = CASE id");
        var entropy = new string[batch.Count];
        var latest = new Dictionary<long, (long Id, DateTime At)>();           // conversation → newest message
        var reads = new SortedDictionary<(long Conversation, long User), long>(); // sender's own read mark
        var events = new List<NewEvent>();                                      // one per member, in message order
        var links = new List<string>();                                         // attachment → message
        var idempotencyKeys = new StringBuilder();                              // the sends' Idempotency-Keys
        var n = 0;
        for (var i = 0; i < batch.Count; i++)
        {
            if (ids[i] == 0) continue;
            var (conversation, sender) = (batch[i].ConversationId, batch[i].SenderId);
            var (sealedBody, key) = envelope.Seal(Encoding.UTF8.GetBytes(batch[i].Body), MessageRow.Purpose,
                MessageRow.SealedFields(ids[i], conversation, sender));
            entropy[i] = sealedBody.Entropy;
            // Plain MySqlCommand parameters: Dapper.AOT would expand a byte[] parameter as a list.
            var separator = n > 0 ? "," : "";
            keys.Append(CultureInfo.InvariantCulture, $"{separator}(@k{n},@kk{n},@kw{n},@ke{n},@kc{n})");
            second.Parameters.AddWithValue($"@k{n}", key.Id);
            second.Parameters.AddWithValue($"@kk{n}", key.KekId);
            second.Parameters.AddWithValue($"@kw{n}", key.Wrapped);
            second.Parameters.AddWithValue($"@ke{n}", key.Entropy);
            second.Parameters.AddWithValue($"@kc{n}", key.CreatedAt);
            bodies.Append(CultureInfo.InvariantCulture, $" WHEN {ids[i]} THEN @b{n}");
            entropies.Append(CultureInfo.InvariantCulture, $" WHEN {ids[i]} THEN @e{n}");
            second.Parameters.AddWithValue($"@b{n}", sealedBody.Blob);
            second.Parameters.AddWithValue($"@e{n}", sealedBody.Entropy);
            n++;
            if (!latest.TryGetValue(conversation, out var newest) || newest.Id < ids[i]) latest[conversation] = (ids[i], sentAt[i]);
            reads[(conversation, sender)] = Math.Max(ids[i], reads.GetValueOrDefault((conversation, sender)));
            foreach (var member in members[conversation]) events.Add(new NewEvent(member, MessageEvents.Kind, conversation, ids[i], sender));
            if (batch[i].Key is { } idempotency)
            {
                idempotencyKeys.Append(CultureInfo.InvariantCulture, $"{(idempotencyKeys.Length > 0 ? "," : "")}({sender},@ik{i},@ih{i},{ids[i]},@keyedAt)");
                second.Parameters.AddWithValue($"@ik{i}", idempotency.Value);
                second.Parameters.AddWithValue($"@ih{i}", idempotency.RequestHmac);
            }
            for (var p = 0; p < batch[i].Attachments.Length; p++)
                links.Add(string.Create(CultureInfo.InvariantCulture, $"{{\"a\":{batch[i].Attachments[p]},\"m\":{ids[i]},\"p\":{p},\"s\":{sender}}}"));
        }
        // Each attachment joins exactly one message: only a claimed upload of the sender's is linked.
        var linkSql = links.Count == 0 ? "" : """
            UPDATE JSON_TABLE(@links, '$[*]' COLUMNS (a BIGINT UNSIGNED PATH '$.a', m BIGINT UNSIGNED PATH '$.m', p INT PATH '$.p', s BIGINT UNSIGNED PATH '$.s')) AS l
                STRAIGHT_JOIN attachments at FORCE INDEX (PRIMARY) ON at.id = l.a AND at.uploader_id = l.s AND at.message_id = 0
                SET at.message_id = l.m, at.position = l.p;
            """;
        if (links.Count > 0) second.Parameters.AddWithValue("@links", Json(links));
        // A key already taken (the same send racing on another node) fails the batch with a duplicate
        // key before its COMMIT; GroupCommit then writes its sends one by one and the endpoint
        // answers the loser with the winner's message.
        var keySql = "";
        if (idempotencyKeys.Length > 0)
        {
            keySql = $"INSERT INTO idempotency_keys (sender_id, idempotency_key, request_sha256, message_id, created_at) VALUES {idempotencyKeys};";
            second.Parameters.AddWithValue("@keyedAt", now);
        }
        second.Parameters.AddWithValue("@activity", Json(reads.Select(r =>
        {
            var (id, at) = latest[r.Key.Conversation];
            return string.Create(CultureInfo.InvariantCulture,
                $"{{\"c\":{r.Key.Conversation},\"u\":{r.Key.User},\"m\":{id},\"t\":\"{at:yyyy-MM-dd HH:mm:ss.fff}\",\"r\":{r.Value}}}");
        })));
        var storedIds = string.Join(",", ids.Where(id => id != 0));
        second.CommandText = $"""
            {keys};
            {bodies} END{entropies} END WHERE id IN ({storedIds});
            UPDATE JSON_TABLE(@activity, '$[*]' COLUMNS (c BIGINT UNSIGNED PATH '$.c', u BIGINT UNSIGNED PATH '$.u', m BIGINT UNSIGNED PATH '$.m',
                    t DATETIME(3) PATH '$.t', r BIGINT UNSIGNED PATH '$.r')) AS a
                STRAIGHT_JOIN conversations c FORCE INDEX (PRIMARY) ON c.id = a.c
                STRAIGHT_JOIN conversation_members cm FORCE INDEX (PRIMARY) ON cm.conversation_id = a.c AND cm.user_id = a.u
                SET c.last_message_id = a.m, c.last_activity_at = a.t, cm.last_read_message_id = a.r;
            {linkSql}
            {keySql}
            {EventLog.Statements(second, events, now)}
            SELECT COUNT(*) FROM messages FORCE INDEX (PRIMARY) WHERE id IN ({storedIds}) AND body <> '';
            """;
        long[] numbers;
        await using (var reader = await second.ExecuteReaderAsync())
        {
            numbers = await EventLog.ReadSeqsAsync(reader, events);
            await reader.NextResultAsync();
            await reader.ReadAsync();
            var found = reader.GetInt64(0);
            while (await reader.NextResultAsync()) { }   // an error reported after the last result throws here
            if (found != n) throw new AbortedUnderBatch(n, found);
        }
        // The node may have answered the sends 503 while MariaDB held the batch (GroupCommit).
        if (!mayCommit()) throw new GivenUp();
        await using (var commit = new MySqlCommand($"COMMIT; {DefaultSession}", connection))
            await commit.ExecuteNonQueryAsync();
        var seqOf = new Dictionary<(long User, long Message), long>(events.Count);
        for (var e = 0; e < events.Count; e++) seqOf[(events[e].UserId, events[e].SubjectId)] = numbers[e];

        for (var i = 0; i < batch.Count; i++)
        {
            if (ids[i] == 0) continue;
            var recipients = members[batch[i].ConversationId].ToArray();
            var seqs = recipients.Select(r => seqOf[(r, ids[i])]).ToArray();
            stored[i] = new Stored(ids[i], names[batch[i].SenderId], recipients, seqs, entropy[i], sentAt[i]);
        }
        return stored;
    }

    static string Json(IEnumerable<string> objects) => "[" + string.Join(",", objects) + "]";

    /// <summary>
    /// The check before the COMMIT: the transaction still holds the messages round trip 1 inserted.
    /// When a statement's transaction is aborted under it (Galera), the server may go on with the
    /// rest of the batch in a new transaction without reporting the abort in time; the batch's
    /// last statement then no longer finds its messages, and committing would store the rest of
    /// the batch without them (events numbered from counters that the abort rolled back). Treated
    /// as the conflict it is: rolled back and written again (see GroupCommit).
    /// </summary>
    public sealed class AbortedUnderBatch(int expected, long found)
        : Exception($"The send transaction was aborted under its batch: {found} of its {expected} messages left; rolled back");

    /// <summary>The node gave up waiting for MariaDB and answered the batch's sends before its COMMIT: rolled back.</summary>
    public sealed class GivenUp() : Exception("The send batch was given up before its COMMIT; rolled back");
}
