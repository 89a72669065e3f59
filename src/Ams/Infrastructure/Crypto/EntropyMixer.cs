using System.Security.Cryptography;

namespace Ams.Infrastructure.Crypto;

public static class EntropyModes
{
    public const string Atmospheric = "random.org+os";
    public const string OsOnly = "os";
    public static readonly IReadOnlyList<string> All = [Atmospheric, OsOnly];
}

/// <summary>
/// Where every key and nonce seed comes from. Each output is
/// HKDF-SHA256(salt = mixing state, IKM = 32 fresh bytes from the OS CSPRNG), so it is at least as
/// strong as the OS source even if every atmospheric byte were known to an attacker.
/// Atmospheric noise enters the mixing state through <see cref="Reseed"/> (on a schedule, not per
/// key, so a free random.org quota lasts the whole day), and the state ratchets forward after
/// every output so that a later state compromise does not reveal earlier keys.
/// </summary>
public sealed class EntropyMixer
{
    public const string Description = "HKDF-SHA256(state, os) per key; state reseeded with HKDF-SHA256(state, random.org ‖ os)";
    static readonly byte[] ReseedInfo = "ams/mixer/reseed/v1"u8.ToArray();
    static readonly byte[] RatchetInfo = "ams/mixer/ratchet/v1"u8.ToArray();

    readonly Lock gate = new();
    readonly TimeProvider time;
    readonly Action<Span<byte>> osRandom;
    readonly byte[] state = new byte[32];
    DateTimeOffset? lastAtmosphericReseed;

    public EntropyMixer(TimeProvider time) : this(time, RandomNumberGenerator.Fill) { }

    /// <summary>Tests pass their own OS source to show that its bytes reach every output.</summary>
    internal EntropyMixer(TimeProvider time, Action<Span<byte>> os)
    {
        this.time = time;
        osRandom = os;
        os(state);
    }

    /// <summary>How long an atmospheric reseed keeps the mixer in <c>random.org+os</c> mode.</summary>
    public TimeSpan FreshFor { get; set; } = TimeSpan.FromMinutes(10);

    public DateTimeOffset? LastAtmosphericReseed { get { lock (gate) return lastAtmosphericReseed; } }

    public string Mode
    {
        get { lock (gate) return ModeLocked(); }
    }

    public void Reseed(ReadOnlySpan<byte> atmospheric)
    {
        Span<byte> ikm = stackalloc byte[atmospheric.Length + 32];
        atmospheric.CopyTo(ikm);
        osRandom(ikm[atmospheric.Length..]);
        lock (gate)
        {
            Span<byte> prk = stackalloc byte[32];
            HKDF.Extract(HashAlgorithmName.SHA256, ikm, state, prk);
            HKDF.Expand(HashAlgorithmName.SHA256, prk, state, ReseedInfo);
            CryptographicOperations.ZeroMemory(prk);
            lastAtmosphericReseed = time.GetUtcNow();
        }
        CryptographicOperations.ZeroMemory(ikm);
    }

    /// <summary>Fills <paramref name="output"/> with key material for <paramref name="purpose"/>; returns the mode that minted it.</summary>
    public string Fill(Span<byte> output, ReadOnlySpan<byte> purpose) => Fill(output, purpose, [], default);

    /// <summary>
    /// Two outputs of one mixing step, each expanded under its own purpose (a data key and its
    /// nonce): one OS draw and one ratchet instead of two, on the send writer's path.
    /// </summary>
    public string Fill(Span<byte> output, ReadOnlySpan<byte> purpose, Span<byte> second, ReadOnlySpan<byte> secondPurpose)
    {
        Span<byte> os = stackalloc byte[32];
        Span<byte> prk = stackalloc byte[32];
        osRandom(os);
        string mode;
        lock (gate)
        {
            HKDF.Extract(HashAlgorithmName.SHA256, os, state, prk);
            HKDF.Expand(HashAlgorithmName.SHA256, prk, state, RatchetInfo);
            mode = ModeLocked();
        }
        HKDF.Expand(HashAlgorithmName.SHA256, prk, output, purpose);
        if (!second.IsEmpty) HKDF.Expand(HashAlgorithmName.SHA256, prk, second, secondPurpose);
        CryptographicOperations.ZeroMemory(prk);
        CryptographicOperations.ZeroMemory(os);
        return mode;
    }

    string ModeLocked() =>
        lastAtmosphericReseed is { } at && time.GetUtcNow() - at <= FreshFor ? EntropyModes.Atmospheric : EntropyModes.OsOnly;
}
