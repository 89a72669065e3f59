using Ams.Infrastructure;
using System.Text;
using Ams.Infrastructure.Crypto;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MySqlConnector;

namespace Ams.Tests.Entropy;

/// <summary>AES-256-GCM envelope encryption against the real database.</summary>
public sealed class EnvelopeTests(Services services) : IClassFixture<Services>
{
    const string Purpose = "test-secret";

    static string NewKeys(string id) => $"{id}:{Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))}";

    static Envelope EnvelopeFor(IAlbaHost app, string masterKeys, CapturedLogs? logs = null) => Envelopes.For(app, masterKeys, logs);

    async Task<byte[]> SealAsync(Envelope envelope, IAlbaHost app, string plaintext, params string[] row)
    {
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        return (await envelope.SealStringAsync(plaintext, Purpose, row, connection)).Blob;
    }

    [Fact]
    public async Task A_sealed_secret_opens_for_its_row_and_its_plaintext_is_nowhere_in_the_raw_rows()
    {
        var app = await services.AppAsync();
        var envelope = app.Services.GetRequiredService<Envelope>();
        var secret = "JBSWY3DPEHPK3PXP-" + Guid.NewGuid().ToString("N");
        var blob = await SealAsync(envelope, app, secret, "row-1", "alice");
        await services.SqlAsync(
            $"CREATE TABLE IF NOT EXISTS sealed_test (id VARCHAR(64) PRIMARY KEY, secret VARBINARY(512)); " +
            $"INSERT INTO sealed_test VALUES ('{Guid.NewGuid():N}', 0x{Convert.ToHexString(blob)})");

        Assert.Equal(secret, await envelope.OpenStringAsync(blob, Purpose, ["row-1", "alice"]));
        var dump = await services.SqlAsync(
            "SELECT HEX(secret), secret FROM sealed_test; SELECT HEX(id), HEX(wrapped), kek_id, entropy FROM data_keys;");
        Assert.DoesNotContain(secret, dump);
        Assert.DoesNotContain(Convert.ToHexString(Encoding.UTF8.GetBytes(secret)), dump);
        Assert.DoesNotContain(Convert.ToHexString(Encoding.UTF8.GetBytes(secret[..16])), dump);
    }

    [Fact]
    public async Task Tampering_anywhere_is_detected_and_gives_null_not_garbage()
    {
        var app = await services.AppAsync();
        var envelope = app.Services.GetRequiredService<Envelope>();
        var blob = await SealAsync(envelope, app, "attack at dawn", "row-2");
        for (var i = 0; i < blob.Length; i++)
        {
            var tampered = (byte[])blob.Clone();
            tampered[i] ^= 0x01;
            Assert.Null(await envelope.OpenAsync(tampered, Purpose, ["row-2"]));
        }
        Assert.Null(await envelope.OpenAsync(blob[..^1], Purpose, ["row-2"]));
        Assert.Null(await envelope.OpenAsync([], Purpose, ["row-2"]));
        Assert.Equal("attack at dawn", await envelope.OpenStringAsync(blob, Purpose, ["row-2"]));
    }

    [Fact]
    public async Task A_ciphertext_moved_to_another_row_or_purpose_does_not_open()
    {
        var app = await services.AppAsync();
        var envelope = app.Services.GetRequiredService<Envelope>();
        var blob = await SealAsync(envelope, app, "bob's secret", "row-3", "bob");
        Assert.Null(await envelope.OpenAsync(blob, Purpose, ["row-4", "bob"]));
        Assert.Null(await envelope.OpenAsync(blob, Purpose, ["row-3", "mallory"]));
        Assert.Null(await envelope.OpenAsync(blob, Purpose, ["row-3"]));
        Assert.Null(await envelope.OpenAsync(blob, Purpose, ["row-", "3bob"]));
        Assert.Null(await envelope.OpenAsync(blob, "another-purpose", ["row-3", "bob"]));
    }

    [Fact]
    public async Task A_tampered_wrapped_data_key_is_detected()
    {
        var app = await services.AppAsync();
        var envelope = EnvelopeFor(app, Services.MasterKeys);
        var blob = await SealAsync(envelope, app, "wrapped", "row-5");
        var keyId = Convert.ToHexString(blob.AsSpan(1, 16));
        await services.SqlAsync(
            $"UPDATE data_keys SET wrapped = CONCAT(LEFT(wrapped, 20), CHAR(ASCII(SUBSTRING(wrapped, 21, 1)) ^ 1), SUBSTRING(wrapped, 22)) WHERE id = 0x{keyId}");
        // A fresh envelope has no cached key, so it must unwrap the stored one.
        Assert.Null(await EnvelopeFor(app, Services.MasterKeys).OpenAsync(blob, Purpose, ["row-5"]));
    }

    [Fact]
    public async Task Rotation_rewraps_every_data_key_so_the_old_master_key_can_go_with_nothing_lost()
    {
        var database = "rotation_" + Guid.NewGuid().ToString("N")[..8];
        var oldKeys = NewKeys("old");
        var newKey = NewKeys("new");
        await using var app = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = oldKeys });
        var before = EnvelopeFor(app, oldKeys);
        var secrets = Enumerable.Range(0, 7).Select(i => $"secret number {i}").ToList();
        var blobs = new List<byte[]>();
        foreach (var (secret, i) in secrets.Select((s, i) => (s, i))) blobs.Add(await SealAsync(before, app, secret, $"r{i}"));

        Assert.Null(await EnvelopeFor(app, newKey).OpenAsync(blobs[0], Purpose, ["r0"]));
        var db = app.Services.GetRequiredService<MariaDb>();
        var rotation = await KeyRotation.RunAsync(db, MasterKeys.Parse($"{newKey},{oldKeys}"), NullLogger.Instance);
        Assert.Equal(7 + 1, rotation.Rewrapped);   // and the recovery-code key the start kept (RecoveryCodeKeys)
        Assert.Equal(0, rotation.RemainingUnderOtherKeys);
        Assert.Equal(0, (await KeyRotation.RunAsync(db, MasterKeys.Parse($"{newKey},{oldKeys}"), NullLogger.Instance)).Rewrapped);

        var after = EnvelopeFor(app, newKey);   // the old key is gone
        for (var i = 0; i < blobs.Count; i++)
            Assert.Equal(secrets[i], await after.OpenStringAsync(blobs[i], Purpose, [$"r{i}"]));
    }

    [Fact]
    public async Task An_empty_plaintext_round_trips_and_a_blob_one_byte_too_short_is_null_not_an_exception()
    {
        var app = await services.AppAsync();
        var envelope = EnvelopeFor(app, Services.MasterKeys);
        var blob = await SealAsync(envelope, app, "", "row-7");
        Assert.Equal(1 + 16 + 12 + 16, blob.Length);
        Assert.Equal("", await envelope.OpenStringAsync(blob, Purpose, ["row-7"]));
        // The key id is intact, so only the length check stands between this and a negative array size.
        Assert.Null(await envelope.OpenAsync(blob[..^1], Purpose, ["row-7"]));
    }

    [Fact]
    public async Task A_record_whose_data_key_is_gone_opens_to_null_and_the_log_says_which_key()
    {
        var app = await services.AppAsync();
        var blob = await SealAsync(EnvelopeFor(app, Services.MasterKeys), app, "orphan", "row-6");
        var keyId = new Guid(blob.AsSpan(1, 16), bigEndian: true);
        await services.SqlAsync($"DELETE FROM data_keys WHERE id = 0x{Convert.ToHexString(blob.AsSpan(1, 16))}");
        var logs = new CapturedLogs();
        Assert.Null(await EnvelopeFor(app, Services.MasterKeys, logs).OpenAsync(blob, Purpose, ["row-6"]));
        Assert.Contains($"Warning Ams.Infrastructure.Crypto.Envelope: Undecryptable {Purpose} ciphertext: data key {keyId} missing or not unwrappable", logs.Lines);
    }

    [Fact]
    public async Task Rotation_goes_past_a_full_batch_and_logs_what_it_did()
    {
        // One more key than a batch holds: stopping after a full batch would leave one under the old key.
        var database = "rotation_" + Guid.NewGuid().ToString("N")[..8];
        var oldKeys = NewKeys("old");
        var newKey = NewKeys("new");
        await using var app = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = oldKeys });
        var db = app.Services.GetRequiredService<MariaDb>();
        var before = EnvelopeFor(app, oldKeys);
        var blobs = new List<byte[]>();
        await using (var connection = await db.OpenConnectionAsync())
        await using (var transaction = await Transaction.BeginAsync(connection))
        {
            for (var i = 0; i < 501; i++)
                blobs.Add((await before.SealStringAsync($"s{i}", Purpose, [$"b{i}"], connection)).Blob);
            await transaction.CommitAsync();
        }
        var logs = new CapturedLogs();
        var rotation = await KeyRotation.RunAsync(db, MasterKeys.Parse($"{newKey},{oldKeys}"), logs.CreateLogger("rotation"));
        // 501 and the recovery-code key the start kept (RecoveryCodeKeys).
        Assert.Equal((502, 0, 0), (rotation.Rewrapped, rotation.Unreadable, rotation.RemainingUnderOtherKeys));
        Assert.Contains("Information rotation: Key rotation: 502 data keys re-wrapped under 'new', 0 unreadable, 0 still under other keys", logs.Lines);
        Assert.Equal("s500", await EnvelopeFor(app, newKey).OpenStringAsync(blobs[500], Purpose, ["b500"]));
    }

    [Fact]
    public async Task A_node_refuses_to_start_while_data_keys_are_under_a_master_key_it_does_not_list()
    {
        var database = "unlisted_" + Guid.NewGuid().ToString("N")[..8];
        var oldKeys = NewKeys("old");
        var newKey = NewKeys("new");
        byte[] blob;
        await using (var app = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = oldKeys }))
            blob = await SealAsync(EnvelopeFor(app, oldKeys), app, "under old", "u1");
        var unlisted = await services.MariaDb.ExecuteAsRootAsync($"USE `{database}`; SELECT COUNT(*) FROM data_keys WHERE kek_id = 'old'");

        var error = await Assert.ThrowsAsync<ConfigurationException>(() => services.StartAppAsync(database,
            new Dictionary<string, string?> { ["Crypto:MasterKeys"] = newKey }));
        Assert.Equal($"{unlisted.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim()} data keys are wrapped under master key 'old', which Crypto:MasterKeys does not list, " +
            "so what they protect cannot be read. List it after the current key, then run --rotate-keys (README: Rotating the master key).", error.Message);
        Assert.DoesNotContain(newKey[4..], error.Message);
        Assert.Equal("0", (await services.MariaDb.ExecuteAsRootAsync($"USE `{database}`; SELECT COUNT(*) FROM data_keys WHERE kek_id = 'new'"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim());   // refused before writing anything

        await using var listed = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = $"{newKey},{oldKeys}" });
        Assert.Equal("under old", await EnvelopeFor(listed, $"{newKey},{oldKeys}").OpenStringAsync(blob, Purpose, ["u1"]));
    }

    [Fact]
    public async Task A_node_refuses_to_start_with_a_master_key_of_the_right_id_and_the_wrong_value()
    {
        var database = "wrongkey_" + Guid.NewGuid().ToString("N")[..8];
        await using (await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = NewKeys("k1") })) { }
        var other = NewKeys("k1");   // a typo, or the key of another deployment
        var error = await Assert.ThrowsAsync<ConfigurationException>(() => services.StartAppAsync(database,
            new Dictionary<string, string?> { ["Crypto:MasterKeys"] = other }));
        Assert.Matches(@"^Crypto:MasterKeys key 'k1' opens none of the [1-8] data keys tried of those wrapped under that id: it is not the key they were wrapped with \(or every row tried is damaged\)\.$", error.Message);
    }

    [Fact]
    public async Task One_damaged_data_key_does_not_keep_a_node_from_starting_and_only_its_value_is_unreadable()
    {
        var database = "damaged_" + Guid.NewGuid().ToString("N")[..8];
        var keys = NewKeys("k1");
        var sealedValues = new List<(string Plaintext, byte[] Blob)>();
        await using (var app = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = keys }))
            for (var i = 0; i < 3; i++)
                sealedValues.Add(($"value {i}", await SealAsync(EnvelopeFor(app, keys), app, $"value {i}", $"u{i}")));
        // The row a start tries first: the lowest id under the key.
        await services.MariaDb.ExecuteAsRootAsync($"USE `{database}`; UPDATE data_keys " +
            "SET wrapped = CONCAT(LEFT(wrapped, 20), CHAR(ASCII(SUBSTRING(wrapped, 21, 1)) ^ 1), SUBSTRING(wrapped, 22)) WHERE kek_id = 'k1' ORDER BY id LIMIT 1");

        await using var restarted = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = keys });
        var envelope = EnvelopeFor(restarted, keys);
        var opened = new List<string?>();
        for (var i = 0; i < sealedValues.Count; i++) opened.Add(await envelope.OpenStringAsync(sealedValues[i].Blob, Purpose, [$"u{i}"]));
        Assert.True(opened.Count(o => o is null) <= 1, string.Join(", ", opened));
        Assert.All(opened.Select((o, i) => (o, i)).Where(x => x.o is not null), x => Assert.Equal(sealedValues[x.i].Plaintext, x.o));
    }

    [Fact]
    public async Task Rotation_without_the_old_key_leaves_those_data_keys_alone_and_says_so()
    {
        var database = "rotation_" + Guid.NewGuid().ToString("N")[..8];
        var oldKeys = NewKeys("old");
        await using var app = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = oldKeys });
        var blob = await SealAsync(EnvelopeFor(app, oldKeys), app, "kept", "k1");
        var rotation = await KeyRotation.RunAsync(app.Services.GetRequiredService<MariaDb>(), MasterKeys.Parse(NewKeys("new")), NullLogger.Instance);
        Assert.Equal((0, 2, 2), (rotation.Rewrapped, rotation.Unreadable, rotation.RemainingUnderOtherKeys));   // and the recovery-code key
        Assert.Equal("kept", await EnvelopeFor(app, oldKeys).OpenStringAsync(blob, Purpose, ["k1"]));
    }

    [Theory]
    [InlineData("")]
    [InlineData("nokey")]
    [InlineData("k1:notbase64!!")]
    [InlineData("k1:AAAA")]
    [InlineData("bad id:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    public async Task Production_refuses_to_start_without_valid_master_keys(string setting)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => services.StartAppAsync(
            settings: new Dictionary<string, string?> { ["Crypto:MasterKeys"] = setting }));
        Assert.Contains("Crypto:MasterKeys", error.ToString());
        if (setting.Contains(':')) Assert.DoesNotContain(setting[(setting.IndexOf(':') + 1)..], error.Message);
    }

    [Fact]
    public async Task Development_generates_a_key_file_once_and_warns()
    {
        var file = Path.Combine(Path.GetTempPath(), $"ams-dev-key-{Guid.NewGuid():N}", "dev-master-keys");
        // A database of its own: the class's holds data keys under the test key, which this node does not list.
        var database = "devkey_" + Guid.NewGuid().ToString("N")[..8];
        var logs = new CapturedLogs();
        try
        {
            await using (await services.StartAppAsync(database, environment: "Development",
                settings: new Dictionary<string, string?> { ["Crypto:MasterKeys"] = "", ["Crypto:DevKeyFile"] = file },
                services: s => s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs)))
            {
            }
            var first = await File.ReadAllTextAsync(file);
            Assert.StartsWith("dev:", first);
            MasterKeys.Parse(first);
            Assert.Contains(logs.Lines, l => l.StartsWith("Warning Ams.Crypto: ") && l.Contains("DEVELOPMENT MASTER KEY"));
            Assert.DoesNotContain(first.Trim()[4..], logs.All);
            await using (await services.StartAppAsync(database, environment: "Development",
                settings: new Dictionary<string, string?> { ["Crypto:MasterKeys"] = "", ["Crypto:DevKeyFile"] = file }))
            {
            }
            Assert.Equal(first, await File.ReadAllTextAsync(file));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
        }
    }
}
