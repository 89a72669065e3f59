using Ams.Infrastructure;
using StackExchange.Redis;

namespace Ams.Features.Entropy;

/// <summary>
/// The cluster's atmospheric bytes, in Redis as a list of 32-byte chunks. LPOP is atomic, so
/// each chunk reaches exactly one node's mixer, once.
/// </summary>
public sealed class Pool(IConnectionMultiplexer redis)
{
    public const int ChunkBytes = 32;
    const string Key = Redis.KeyPrefix + "entropy:pool";
    IDatabase Db => redis.GetDatabase();

    public async Task AddAsync(byte[] blob)
    {
        var chunks = blob.Chunk(ChunkBytes).Where(c => c.Length == ChunkBytes).Select(c => (RedisValue)c).ToArray();
        if (chunks.Length > 0) await Db.ListRightPushAsync(Key, chunks);
    }

    public async Task<byte[]?> TakeAsync()
    {
        var chunk = await Db.ListLeftPopAsync(Key);
        return chunk.IsNull ? null : (byte[])chunk!;
    }

    public async Task<long> BytesAsync() => await Db.ListLengthAsync(Key) * ChunkBytes;
}
