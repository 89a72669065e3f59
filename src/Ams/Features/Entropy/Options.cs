namespace Ams.Features.Entropy;

public sealed class RandomOrgOptions
{
    /// <summary>Empty: OS randomness only, and /api/entropy says so.</summary>
    public string ApiKey { get; set; } = "";
    public string Endpoint { get; set; } = "https://api.random.org/json-rpc/4/invoke";
    /// <summary>random.org asks clients to allow long waits rather than retry quickly.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(120);
}

public sealed class EntropyOptions
{
    /// <summary>Bits per generateBlobs request: 16 reseeds' worth, so requests stay far below 1,000 a day.</summary>
    public int BlobBits { get; set; } = 4096;
    /// <summary>Refill only below this many pooled bytes.</summary>
    public int PoolLowWaterBytes { get; set; } = 256;
    /// <summary>How often each node mixes 32 pooled atmospheric bytes into its state.</summary>
    public TimeSpan ReseedInterval { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>How often each node checks whether the pool needs a refill or its state a reseed.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(15);
    /// <summary>Bits to spend per UTC day across the cluster (a free key has 250,000).</summary>
    public long DailyBitBudget { get; set; } = 200_000;
    /// <summary>Requests per UTC day across the cluster (a free key has 1,000).</summary>
    public int DailyRequestBudget { get; set; } = 900;
    /// <summary>Off in tests that drive refills and reseeds by hand.</summary>
    public bool Background { get; set; } = true;
}
