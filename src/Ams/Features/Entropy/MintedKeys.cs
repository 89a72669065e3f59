using Ams.Infrastructure.Crypto;
using StackExchange.Redis;

namespace Ams.Features.Entropy;

/// <summary>Cluster-wide counts of data keys minted with and without atmospheric noise, for <c>/api/entropy</c>.</summary>
public sealed class MintedKeys(IConnectionMultiplexer redis) : IKeyMintCounter
{
    public const string AtmosphericKey = Infrastructure.Redis.KeyPrefix + "entropy:minted:random.org+os";
    public const string OsKey = Infrastructure.Redis.KeyPrefix + "entropy:minted:os";

    public void Count(string entropy)
    {
        try
        {
            redis.GetDatabase().StringIncrement(entropy == EntropyModes.Atmospheric ? AtmosphericKey : OsKey, flags: CommandFlags.FireAndForget);
        }
        catch (RedisException)
        {
            // Best effort: a Redis outage must not stop storing data.
        }
    }
}
