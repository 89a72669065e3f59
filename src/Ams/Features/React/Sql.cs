using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.React;

static class Sql
{
    public abstract record Outcome;
    public sealed record NotFound : Outcome;
    public sealed record Unchanged : Outcome;
    public sealed record Changed(long ConversationId, long[] Members, long[] Seqs, string Username, int Count) : Outcome;

    /// <summary>
    /// Adds or takes back the caller's <paramref name="emoji"/> on a message they can see (not a
    /// deleted one). Nothing changes, and nobody is told, when it is already so; otherwise the
    /// change is logged and every member gets <c>event: reaction</c>, in one transaction.
    /// </summary>
    public static async Task<Outcome> SetAsync(MySqlConnection connection, long userId, long messageId, string emoji, bool add, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        long conversationId;
        string username;
        await using (var find = new MySqlCommand("""
            SELECT m.conversation_id, (SELECT username FROM users WHERE id = @userId) FROM messages m
            JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = @userId
            WHERE m.id = @id AND m.id > cm.joined_after_message_id AND m.deleted_at IS NULL
            LOCK IN SHARE MODE
            """, connection))
        {
            find.Parameters.AddWithValue("@id", messageId);
            find.Parameters.AddWithValue("@userId", userId);
            await using var reader = await find.ExecuteReaderAsync();
            if (!await reader.ReadAsync()) return new NotFound();
            (conversationId, username) = (reader.GetInt64(0), reader.GetString(1));
        }
        // The caller's reactions here in any spelling of this emoji: rows from before spellings were
        // made one (Emoji.Canonical) count as it, and go when it is taken back.
        var spellings = new List<string>();
        await using (var mine = new MySqlCommand("SELECT emoji FROM reactions WHERE message_id = @id AND user_id = @userId FOR UPDATE", connection))
        {
            mine.Parameters.AddWithValue("@id", messageId);
            mine.Parameters.AddWithValue("@userId", userId);
            await using var reader = await mine.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                if (reader.GetString(0) is var stored && Emoji.Canonical(stored) == emoji) spellings.Add(stored);
        }
        if (add == spellings.Count > 0)
        {
            await transaction.CommitAsync();
            return new Unchanged();
        }
        long changeId;
        var members = new List<long>();
        var changed = 0;
        foreach (var spelling in add ? [emoji] : spellings)
        {
            await using var change = new MySqlCommand(add
                ? "INSERT IGNORE INTO reactions (message_id, emoji, user_id, created_at) VALUES (@id, @emoji, @userId, @now)"
                : "DELETE FROM reactions WHERE message_id = @id AND emoji = @emoji AND user_id = @userId", connection);
            change.Parameters.AddWithValue("@id", messageId);
            change.Parameters.AddWithValue("@emoji", spelling);
            change.Parameters.AddWithValue("@userId", userId);
            change.Parameters.AddWithValue("@now", now);
            changed += await change.ExecuteNonQueryAsync();
        }
        if (changed == 0)
        {
            await transaction.CommitAsync();
            return new Unchanged();
        }
        await using (var log = new MySqlCommand { Connection = connection })
        {
            log.Parameters.AddWithValue("@id", messageId);
            log.Parameters.AddWithValue("@emoji", emoji);
            log.Parameters.AddWithValue("@userId", userId);
            log.Parameters.AddWithValue("@added", add);
            log.Parameters.AddWithValue("@now", now);
            log.Parameters.AddWithValue("@conversationId", conversationId);
            // One statement per round trip (see Database.ExecuteEachAsync).
            await log.ExecuteEachAsync("INSERT INTO reaction_changes (message_id, emoji, user_id, added, created_at) VALUES (@id, @emoji, @userId, @added, @now)");
            changeId = log.LastInsertedId;
            log.CommandText = "SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id LOCK IN SHARE MODE";
            await using var reader = await log.ExecuteReaderAsync();
            while (await reader.ReadAsync()) members.Add(reader.GetInt64(0));
        }
        var seqs = await EventLog.AppendAsync(connection, transaction,
            members.Select(m => new NewEvent(m, ReactionEvents.Kind, conversationId, changeId, userId)).ToList(), now);
        await transaction.CommitAsync();
        // Read after the commit, so the count includes this change and any committed before it.
        var count = ReactionEvents.CountOf(await Reactions.LoadAsync(connection, [messageId]), messageId, emoji);
        return new Changed(conversationId, [.. members], seqs, username, count);
    }
}
