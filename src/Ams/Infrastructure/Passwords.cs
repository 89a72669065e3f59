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
    // Argon2id costs memoryBytes of RAM and a core for its duration: anonymous callers (register,
    // login) could otherwise run as many at once as they can open connections. At most
    // MaxConcurrent run on this node; the rest queue for QueueTimeout, then get 503.
    readonly SemaphoreSlim slots;
    readonly TimeSpan queueTimeout;

    /// <summary>How long a hash waits for a free slot before the request is answered 503.</summary>
    public static readonly TimeSpan DefaultQueueTimeout = TimeSpan.FromSeconds(2);

    public Passwords() : this(MemoryBytes, Iterations) { }

    /// <summary>
    /// The cost from <c>Passwords:MemoryKiB</c> and <c>Passwords:Iterations</c>, each defaulting to the constants above;
    /// <c>Passwords:MaxConcurrent</c> (default: the processor count) and <c>Passwords:QueueTimeoutMs</c> (default 2000).
    /// </summary>
    public Passwords(IConfiguration configuration)
        : this(Setting(configuration, "Passwords:MemoryKiB", MemoryBytes / 1024, MinMemoryKiB, MaxMemoryKiB) * 1024,
               Setting(configuration, "Passwords:Iterations", Iterations, MinIterations, MaxIterations),
               Setting(configuration, "Passwords:MaxConcurrent", Environment.ProcessorCount, 1, 1024),
               TimeSpan.FromMilliseconds(Setting(configuration, "Passwords:QueueTimeoutMs", (int)DefaultQueueTimeout.TotalMilliseconds, 0, 60_000))) { }

    public Passwords(int memoryBytes, int iterations) : this(memoryBytes, iterations, Environment.ProcessorCount, DefaultQueueTimeout) { }

    public Passwords(int memoryBytes, int iterations, int maxConcurrent, TimeSpan queueTimeout)
    {
        this.memoryBytes = memoryBytes;
        this.iterations = iterations;
        slots = new SemaphoreSlim(maxConcurrent, maxConcurrent);
        this.queueTimeout = queueTimeout;
        decoy = new(() => ComputeHash(Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24))));
    }

    /// <summary>Hashes on a free slot, waiting briefly for one; <see cref="PasswordHashingBusyException"/> (503) when none frees up.</summary>
    public async Task<string> HashAsync(string password, CancellationToken ct = default)
    {
        await EnterAsync(ct);
        try { return await OffThePoolAsync(() => ComputeHash(password)); }
        finally { slots.Release(); }
    }

    /// <summary><see cref="VerifyNow"/> on a free slot, waiting briefly for one.</summary>
    public async Task<bool> VerifyAsync(string? phc, string password, CancellationToken ct = default)
    {
        if (phc is null && !decoy.IsValueCreated) await OffThePoolAsync(() => decoy.Value);   // outside the slot: it hashes itself
        await EnterAsync(ct);
        try { return await OffThePoolAsync(() => VerifyNow(phc, password)); }
        finally { slots.Release(); }
    }

    /// <summary>What the threads that hash are called (an operating system's thread list shows it).</summary>
    public const string ThreadName = "ams-argon2id";

    /// <summary>
    /// A hash holds a core for tens of milliseconds. On a thread pool thread it would hold that
    /// thread too: with as many slots as cores, a burst of sign-ins took every pool thread until the
    /// pool grew (about one more every half second), and everything else on the node waited for
    /// them, a Redis reply's 1 s timeout included (an outside check saw a healthy Redis declared
    /// down under 200 concurrent sign-ins). With DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1
    /// (README) the caller may even be a socket event thread. So each hash runs on a thread of its
    /// own, which the slots bound; creating one costs microseconds against the hash's milliseconds.
    /// </summary>
    static Task<T> OffThePoolAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        }) { Name = ThreadName, IsBackground = true }.Start();
        return done.Task;
    }

    async Task EnterAsync(CancellationToken ct)
    {
        if (await slots.WaitAsync(queueTimeout, ct)) return;
        AmsMetrics.PasswordChecksRefused.Add(1);
        throw new PasswordHashingBusyException();
    }

    string ComputeHash(string password)
    {
        Span<char> phc = stackalloc char[Argon2id.HashSize];
        Argon2id.ComputeHash(phc, Encoding.UTF8.GetBytes(password), iterations, memoryBytes);
        return new string(phc.TrimEnd('\0'));
    }

    /// <summary>
    /// Checks the password exactly as typed (no trimming or normalisation). A missing user is
    /// checked against a decoy hash so that it costs the same time as a wrong password.
    /// </summary>
    bool VerifyNow(string? phc, string password)
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

/// <summary>Every password-hashing slot stayed busy for the whole queue time: answered 503 with Retry-After.</summary>
public sealed class PasswordHashingBusyException() : Exception("Every password hashing slot is busy.");
