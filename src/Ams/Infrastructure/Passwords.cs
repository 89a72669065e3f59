using System.Globalization;
using System.Text;
using Geralt;

namespace Ams.Infrastructure;

/// <summary>
/// Argon2id through libsodium (Geralt), stored as a PHC string. OWASP's minimum is
/// m = 19 MiB, t = 2, p = 1; libsodium always uses p = 1.
/// </summary>
/// <remarks>
/// The cost can be set with <c>Passwords:MemoryKiB</c> and <c>Passwords:Iterations</c>; without
/// them the defaults below apply. They exist so that test hosts can hash cheaply: lowering them
/// weakens every hash stored afterwards (raising them back upgrades those hashes on the next
/// login, see <see cref="NeedsRehash"/>). Each PHC string carries its own m and t, so stored
/// hashes keep verifying whatever the current settings are. Values outside
/// [<see cref="MinMemoryKiB"/>, <see cref="MaxMemoryKiB"/>] and
/// [<see cref="MinIterations"/>, <see cref="MaxIterations"/>] are refused at start.
/// </remarks>
public sealed class Passwords
{
    public const int MemoryBytes = 19 * 1024 * 1024;
    public const int Iterations = 2;

    /// <summary>libsodium's floor for Argon2id (8 KiB).</summary>
    public const int MinMemoryKiB = Argon2id.MinMemorySize / 1024;
    /// <summary>1 GiB: more than any login should cost.</summary>
    public const int MaxMemoryKiB = 1024 * 1024;
    public const int MinIterations = Argon2id.MinIterations;
    public const int MaxIterations = 64;

    readonly int memoryBytes;
    readonly int iterations;
    readonly Lazy<string> decoy;

    public Passwords() : this(MemoryBytes, Iterations) { }

    /// <summary>The cost from <c>Passwords:MemoryKiB</c> and <c>Passwords:Iterations</c>, each defaulting to the constants above.</summary>
    public Passwords(IConfiguration configuration)
        : this(Setting(configuration, "Passwords:MemoryKiB", MemoryBytes / 1024, MinMemoryKiB, MaxMemoryKiB) * 1024,
               Setting(configuration, "Passwords:Iterations", Iterations, MinIterations, MaxIterations)) { }

    public Passwords(int memoryBytes, int iterations)
    {
        this.memoryBytes = memoryBytes;
        this.iterations = iterations;
        decoy = new(() => Hash(Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24))));
    }

    public string Hash(string password)
    {
        Span<char> phc = stackalloc char[Argon2id.HashSize];
        Argon2id.ComputeHash(phc, Encoding.UTF8.GetBytes(password), iterations, memoryBytes);
        return new string(phc.TrimEnd('\0'));
    }

    /// <summary>
    /// Checks the password exactly as typed (no trimming or normalisation). A missing user is
    /// checked against a decoy hash so that it costs the same time as a wrong password.
    /// </summary>
    public bool Verify(string? phc, string password)
    {
        var ok = Argon2id.VerifyHash(phc ?? decoy.Value, Encoding.UTF8.GetBytes(password));
        return ok && phc is not null;
    }

    public bool NeedsRehash(string phc) =>
        Argon2id.NeedsRehash(phc, iterations, memoryBytes);

    static int Setting(IConfiguration configuration, string key, int fallback, int min, int max)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text)) return fallback;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            throw new InvalidOperationException($"{key} is '{text}'; it must be a whole number from {min} to {max}.");
        return value;
    }
}
