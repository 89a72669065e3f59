using System.Text;
using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>Message bodies are encrypted at rest: the raw rows never hold the plaintext.</summary>
public sealed class StorageTests(Services services) : IClassFixture<Services>
{
    /// <summary>(table, column) pairs of the ams schema, optionally of one table.</summary>
    async Task<List<(string Table, string Column)>> ColumnsAsync(string? table)
    {
        var output = await services.SqlAsync(
            $"SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{services.Database}'"
            + (table is null ? "" : $" AND TABLE_NAME = '{table}'") + " ORDER BY TABLE_NAME, ORDINAL_POSITION");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(line => line.TrimEnd('\r').Split('\t'))
            .Select(parts => (parts[0], parts[1]))
            .ToList();
    }

    /// <summary>SELECT * and SELECT HEX(every column) of each table.</summary>
    async Task<string> DumpAsync(IEnumerable<(string Table, string Column)> columns)
    {
        var dump = new StringBuilder();
        foreach (var table in columns.GroupBy(c => c.Table))
        {
            dump.AppendLine(await services.SqlAsync($"SELECT * FROM `{table.Key}`"));
            var hexes = string.Join(", ", table.Select(c => $"HEX(`{c.Column}`)"));
            dump.AppendLine(await services.SqlAsync($"SELECT {hexes} FROM `{table.Key}`"));
        }
        return dump.ToString();
    }

    static void AssertNoPlaintext(string dump, string body, string marker, string where)
    {
        var utf8 = Encoding.UTF8.GetBytes(body);
        foreach (var (form, value) in new[]
        {
            ("plaintext", body),
            ("marker", marker),
            ("hex", Convert.ToHexString(utf8)),
            ("hex of the marker", Convert.ToHexString(Encoding.UTF8.GetBytes(marker))),
            ("base64", Convert.ToBase64String(utf8)),
            ("hex of UTF-16", Convert.ToHexString(Encoding.Unicode.GetBytes(marker))),
        })
            Assert.False(dump.Contains(value, StringComparison.OrdinalIgnoreCase), $"{where} holds the message body ({form})");
    }

    static (string Body, string Marker) SecretBody()
    {
        var marker = Guid.NewGuid().ToString("N");
        return ($"the eagle lands at midnight {marker} — ünïcødé 🦊", marker);
    }

    [Fact]
    public async Task The_messages_table_holds_no_plaintext_body()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ea");
        var bob = await app.MemberAsync("eb");
        var (body, marker) = SecretBody();
        var sent = await app.SendToAsync(alice, bob, body);
        Assert.Equal(body, Assert.Single(await app.HistoryAsync(bob, sent["conversationId"].Str()))["body"].Str());

        var columns = await ColumnsAsync("messages");
        Assert.True(columns.Count > 0, "there is no ams.messages table");
        var count = (await services.SqlAsync("SELECT COUNT(*) FROM messages")).Trim().Split('\n').Last().Trim();
        Assert.True(int.Parse(count) >= 1, "ams.messages is empty after a send");

        AssertNoPlaintext(await DumpAsync(columns), body, marker, "ams.messages");
    }

    [Fact]
    public async Task No_table_in_the_database_holds_a_plaintext_body()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("fa");
        var bob = await app.MemberAsync("fb");
        var carol = await app.MemberAsync("fc");
        var (body, marker) = SecretBody();
        var group = await app.GroupAsync(alice, "a plain title", bob, carol);
        var sent = await app.SendAsync(alice, group.Id(), body);
        await app.PostAsync($"/api/conversations/{Chat.Esc(group.Id())}/read", new { upTo = sent.Id() }, bob.Token, 204);
        Assert.Equal(body, (await app.InboxEntryAsync(carol, group.Id()))!["lastMessage"]!["body"].Str());

        AssertNoPlaintext(await DumpAsync(await ColumnsAsync(null)), body, marker, "the ams database");
    }
}
