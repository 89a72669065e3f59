using System.Security.Cryptography;
using Ams.Infrastructure.Crypto;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Ams.Tests.Entropy;

/// <summary>
/// The README's promise "never weaker than the OS": every key depends on fresh OS bytes, so known
/// (or absent) atmospheric bytes cannot make two keys equal or predictable.
/// </summary>
public sealed class MixerTests(Services services) : IClassFixture<Services>
{
    static readonly byte[] Atmospheric = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
    readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 11, 25, 8, 0, 0, TimeSpan.Zero));

    static byte[] Mint(EntropyMixer mixer, string purpose = "test")
    {
        var key = new byte[32];
        mixer.Fill(key, System.Text.Encoding.UTF8.GetBytes(purpose));
        return key;
    }

    /// <summary>An OS source that counts its calls and returns the same bytes each time unless told to tamper with one call.</summary>
    sealed class ScriptedOs(int? tamperWithCall = null)
    {
        public int Calls { get; private set; }

        public void Fill(Span<byte> buffer)
        {
            buffer.Fill(0x5a);
            if (Calls == tamperWithCall) buffer[^1] ^= 1;
            Calls++;
        }
    }

    [Fact]
    public void Two_mixers_fed_the_same_atmospheric_bytes_mint_different_keys()
    {
        var a = new EntropyMixer(clock);
        var b = new EntropyMixer(clock);
        Assert.NotEqual(Mint(a), Mint(b));
        a.Reseed(Atmospheric);
        b.Reseed(Atmospheric);
        Assert.NotEqual(Mint(a), Mint(b));
    }

    [Fact]
    public void Every_OS_draw_reaches_the_keys_minted_from_then_on()
    {
        // Calls: 0 initial state, 1 first key, 2 reseed, 3 second key.
        static List<string> Run(ScriptedOs os)
        {
            var mixer = new EntropyMixer(TimeProvider.System, os.Fill);
            var keys = new List<string> { Convert.ToHexString(Mint(mixer)) };
            mixer.Reseed(Atmospheric);
            keys.Add(Convert.ToHexString(Mint(mixer)));
            Assert.Equal(4, os.Calls);
            return keys;
        }

        var untouched = Run(new ScriptedOs());
        Assert.Equal(untouched, Run(new ScriptedOs()));   // nothing but the OS source varies
        Assert.NotEqual(untouched[0], untouched[1]);
        for (var call = 0; call < 4; call++)
        {
            var tampered = Run(new ScriptedOs(call));
            Assert.Equal(call >= 2, untouched[0] == tampered[0]);
            Assert.NotEqual(untouched[1], tampered[1]);
        }
    }

    [Fact]
    public void Each_key_is_the_documented_HKDF_of_state_and_fresh_OS_bytes()
    {
        var draws = new Queue<byte[]>(Enumerable.Range(1, 6).Select(i => Enumerable.Repeat((byte)i, 32).ToArray()));
        var mixer = new EntropyMixer(clock, buffer => draws.Dequeue().CopyTo(buffer));

        // The same construction written out independently.
        var state = Enumerable.Repeat((byte)1, 32).ToArray();
        byte[] Expected(byte[] os, string purpose, int length)
        {
            var prk = HKDF.Extract(HashAlgorithmName.SHA256, os, state);
            state = HKDF.Expand(HashAlgorithmName.SHA256, prk, 32, "ams/mixer/ratchet/v1"u8.ToArray());
            return HKDF.Expand(HashAlgorithmName.SHA256, prk, length, System.Text.Encoding.UTF8.GetBytes(purpose));
        }

        var first = new byte[20];
        Assert.Equal(EntropyModes.OsOnly, mixer.Fill(first, "ams/totp-secret/v1"u8));
        Assert.Equal(Expected(Enumerable.Repeat((byte)2, 32).ToArray(), "ams/totp-secret/v1", 20), first);

        mixer.Reseed(Atmospheric);
        state = HKDF.Expand(HashAlgorithmName.SHA256,
            HKDF.Extract(HashAlgorithmName.SHA256, [.. Atmospheric, .. Enumerable.Repeat((byte)3, 32)], state),
            32, "ams/mixer/reseed/v1"u8.ToArray());

        var second = new byte[32];
        Assert.Equal(EntropyModes.Atmospheric, mixer.Fill(second, "data-key"u8));
        Assert.Equal(Expected(Enumerable.Repeat((byte)4, 32).ToArray(), "data-key", 32), second);

        // A key and its nonce come from one step: one OS draw, one ratchet, two purposes.
        var (key, nonce) = (new byte[32], new byte[12]);
        Assert.Equal(EntropyModes.Atmospheric, mixer.Fill(key, "data-key"u8, nonce, "nonce"u8));
        var prk = HKDF.Extract(HashAlgorithmName.SHA256, Enumerable.Repeat((byte)5, 32).ToArray(), state);
        state = HKDF.Expand(HashAlgorithmName.SHA256, prk, 32, "ams/mixer/ratchet/v1"u8.ToArray());
        Assert.Equal(HKDF.Expand(HashAlgorithmName.SHA256, prk, 32, "data-key"u8.ToArray()), key);
        Assert.Equal(HKDF.Expand(HashAlgorithmName.SHA256, prk, 12, "nonce"u8.ToArray()), nonce);
        var third = new byte[32];
        mixer.Fill(third, "data-key"u8);
        Assert.Equal(Expected(Enumerable.Repeat((byte)6, 32).ToArray(), "data-key", 32), third);
    }

    [Fact]
    public void The_state_ratchets_so_equal_OS_bytes_still_give_different_keys()
    {
        var mixer = new EntropyMixer(clock, buffer => buffer.Clear());
        Assert.NotEqual(Mint(mixer), Mint(mixer));
    }

    [Fact]
    public void Atmospheric_mode_lasts_exactly_FreshFor_after_a_reseed()
    {
        var mixer = new EntropyMixer(clock) { FreshFor = TimeSpan.FromMinutes(2) };
        Assert.Equal(EntropyModes.OsOnly, mixer.Mode);
        Assert.Null(mixer.LastAtmosphericReseed);
        mixer.Reseed(Atmospheric);
        Assert.Equal(clock.GetUtcNow(), mixer.LastAtmosphericReseed);
        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(EntropyModes.Atmospheric, mixer.Mode);
        Assert.Equal(EntropyModes.Atmospheric, mixer.Fill(new byte[16], "t"u8));
        clock.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(EntropyModes.OsOnly, mixer.Mode);
        Assert.Equal(EntropyModes.OsOnly, mixer.Fill(new byte[16], "t"u8));
    }

    [Fact]
    public async Task Two_fresh_nodes_mint_different_keys_before_any_reseed()
    {
        await using var node1 = await services.StartAppAsync();
        await using var node2 = await services.StartAppAsync();
        var mixers = new[] { node1, node2 }.Select(n => n.Services.GetRequiredService<EntropyMixer>()).ToArray();
        Assert.All(mixers, m => Assert.Null(m.LastAtmosphericReseed));
        Assert.NotEqual(Mint(mixers[0], "ams/totp-secret/v1"), Mint(mixers[1], "ams/totp-secret/v1"));

        // And through the API: the TOTP secrets two nodes hand out.
        var secrets = new List<string>();
        foreach (var node in new[] { node1, node2 })
        {
            var token = await node.NewUserTokenAsync("mix");
            var setup = await node.Scenario(s => { s.Post.Json(new { password = Api.Password }).ToUrl("/api/2fa/setup"); s.WithBearerToken(token); s.StatusCodeShouldBe(200); });
            secrets.Add((await setup.JsonAsync())["secret"]!.GetValue<string>());
        }
        Assert.NotEqual(secrets[0], secrets[1]);
    }
}
