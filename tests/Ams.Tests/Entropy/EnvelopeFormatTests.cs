using Ams.Infrastructure;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Ams.Infrastructure.Crypto;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MySqlConnector;

namespace Ams.Tests.Entropy;

/// <summary>
/// The sealed format byte by byte, the key cache and the operator's log lines: the details
/// mutation testing (docs/quality.md) found no other test looking at.
/// </summary>
public sealed class EnvelopeFormatTests(Services services) : IClassFixture<Services>
{
    const string Purpose = "format-test";

    sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    static Envelope EnvelopeFor(IAlbaHost app, TimeProvider? time = null, CapturedLogs? logs = null) =>
        Envelopes.For(app, Services.MasterKeys, logs, time);

    static async Task<byte[]> StoreAsync(Envelope envelope, IAlbaHost app, string plaintext, params string[] row)
    {
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        return (await envelope.SealStringAsync(plaintext, Purpose, row, connection)).Blob;
    }

    [Fact]
    public void The_associated_data_is_the_version_then_each_part_length_prefixed()
    {
        var keyId = Enumerable.Range(0x10, 16).Select(b => (byte)b).ToArray();
        byte[] expected =
        [
            Envelope.FormatVersion,
            0, 0, 0, 1, (byte)'p',
            0, 0, 0, 16, .. keyId,
            0, 0, 0, 1, (byte)'a',
            0, 0, 0, 2, (byte)'b', (byte)'c',
        ];
        Assert.Equal(expected, Envelope.AssociatedData("p", ["a", "bc"], keyId));
        // Without the prefixes these two would encode alike.
        Assert.NotEqual(Envelope.AssociatedData("p", ["ab", "c"], keyId), Envelope.AssociatedData("p", ["a", "bc"], keyId));
    }

    [Fact]
    public async Task Each_record_gets_a_fresh_random_nonce_and_a_time_ordered_key_id()
    {
        var app = await services.AppAsync();
        var at = new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);
        var envelope = EnvelopeFor(app, new FixedTime(at));
        var (first, firstKey) = envelope.Seal("same"u8, Purpose, ["r"]);
        var (second, _) = envelope.Seal("same"u8, Purpose, ["r"]);

        var nonce1 = first.Blob.AsSpan(17, 12).ToArray();
        var nonce2 = second.Blob.AsSpan(17, 12).ToArray();
        Assert.NotEqual(new byte[12], nonce1);
        Assert.NotEqual(nonce1, nonce2);

        // UUIDv7 stored big-endian: the first six bytes are the Unix milliseconds, so data_keys
        // rows are appended to the end of the primary key's B-tree rather than scattered.
        var idBytes = first.Blob.AsSpan(1, 16).ToArray();
        Assert.Equal(firstKey.Id, idBytes);
        var millis = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(millis, at.ToUnixTimeMilliseconds());
        Assert.Equal(millis[2..], idBytes[..6]);
        Assert.Equal(7, new Guid(idBytes, bigEndian: true).Version);
    }

    [Fact]
    public void Wrapping_the_same_key_twice_uses_two_random_nonces()
    {
        var dataKey = RandomNumberGenerator.GetBytes(32);
        var kek = RandomNumberGenerator.GetBytes(32);
        var id = Guid.CreateVersion7().ToByteArray(bigEndian: true);
        var a = Envelope.Wrap(dataKey, id, "k", kek);
        var b = Envelope.Wrap(dataKey, id, "k", kek);
        Assert.NotEqual(new byte[12], a[..12]);
        Assert.NotEqual(a[..12], b[..12]);
        Assert.Equal(dataKey, Envelope.Unwrap(a, id, "k", kek));
        Assert.Equal(dataKey, Envelope.Unwrap(b, id, "k", kek));
        Assert.Null(Envelope.Unwrap(a, id, "other", kek));
    }

    [Fact]
    public async Task The_key_cache_keeps_the_keys_in_use_and_never_more_than_its_limit()
    {
        var app = await services.AppAsync();
        var envelope = EnvelopeFor(app);
        Guid SealOne() => new(envelope.Seal([], Purpose, []).Key.Id, bigEndian: true);
        var inUse = SealOne();
        var idle = SealOne();
        var recent = new List<Guid>();
        for (var round = 0; round < 4; round++)
        {
            for (var i = 0; i < Envelope.CacheLimit / 2; i++) recent.Add(SealOne());
            Assert.InRange(envelope.CachedKeys, Envelope.CacheLimit / 2, Envelope.CacheLimit);
            // Read again now and then, as a conversation's recent messages are.
            Assert.NotNull(await envelope.KeyAsync(inUse.ToByteArray(bigEndian: true)));
        }
        Assert.True(envelope.Caches(inUse), "a key read in every round was dropped");
        Assert.False(envelope.Caches(idle), "a key nobody read stayed");
        Assert.All(recent[^(Envelope.CacheLimit / 2 - 1)..], id => Assert.True(envelope.Caches(id)));
    }

    [Fact]
    public async Task A_key_read_from_the_database_is_cached_so_the_next_open_needs_no_query()
    {
        var app = await services.AppAsync();
        var blob = await StoreAsync(EnvelopeFor(app), app, "cached", "c1");
        var reader = EnvelopeFor(app);
        Assert.Equal(0, reader.CachedKeys);
        Assert.Equal("cached", await reader.OpenStringAsync(blob, Purpose, ["c1"]));
        Assert.Equal(1, reader.CachedKeys);
        await services.SqlAsync($"DELETE FROM data_keys WHERE id = 0x{Convert.ToHexString(blob.AsSpan(1, 16))}");
        Assert.Equal("cached", await reader.OpenStringAsync(blob, Purpose, ["c1"]));
    }

    [Fact]
    public async Task Unknown_formats_and_tampering_are_logged_for_the_operator()
    {
        var app = await services.AppAsync();
        var logs = new CapturedLogs();
        var envelope = EnvelopeFor(app, logs: logs);
        var blob = await StoreAsync(envelope, app, "logged", "l1");
        var keyId = new Guid(blob.AsSpan(1, 16), bigEndian: true);

        var future = (byte[])blob.Clone();
        future[0] = Envelope.FormatVersion + 1;
        Assert.Null(await envelope.OpenAsync(future, Purpose, ["l1"]));
        Assert.Contains($"Warning Ams.Infrastructure.Crypto.Envelope: Undecryptable {Purpose} ciphertext: unknown format", logs.Lines);

        Assert.Null(await envelope.OpenAsync(blob, Purpose, ["l2"]));
        Assert.Contains($"Warning Ams.Infrastructure.Crypto.Envelope: Undecryptable {Purpose} ciphertext under data key {keyId}: tampered, or moved from another row", logs.Lines);
        Assert.DoesNotContain("logged", logs.All);
    }

    [Fact]
    public async Task Rotation_names_each_data_key_it_cannot_open()
    {
        var database = "rotation_" + Guid.NewGuid().ToString("N")[..8];
        var oldKeys = "old:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        await using var app = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = oldKeys });
        var writer = Envelopes.For(app, oldKeys);
        var blob = await StoreAsync(writer, app, "kept", "k1");
        var keyId = new Guid(blob.AsSpan(1, 16), bigEndian: true);
        var logs = new CapturedLogs();
        await KeyRotation.RunAsync(app.Services.GetRequiredService<MariaDb>(),
            MasterKeys.Parse("new:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))), logs.CreateLogger("rotation"));
        Assert.Contains($"Error rotation: Data key {keyId} is under master key 'old', which is not configured or does not open it; left as is", logs.Lines);
    }
}
