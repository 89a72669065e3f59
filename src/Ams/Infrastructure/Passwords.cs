using System.Text;
using Geralt;

namespace Ams.Infrastructure;

/// <summary>
/// Argon2id through libsodium (Geralt), stored as a PHC string. OWASP's minimum is
/// m = 19 MiB, t = 2, p = 1; libsodium always uses p = 1.
/// </summary>
public sealed class Passwords
{
    public const int MemoryBytes = 19 * 1024 * 1024;
    public const int Iterations = 2;

    readonly int memoryBytes;
    readonly int iterations;
    readonly Lazy<string> decoy;

    public Passwords() : this(MemoryBytes, Iterations) { }

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
}
