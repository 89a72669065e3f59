using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Ams.Infrastructure.Files;

/// <summary>
/// The chunked AEAD of attachments: each chunk is AES-256-GCM under the file's own data key with
/// nonce = the file's random prefix (4 bytes) ‖ chunk index (8 bytes, big-endian), so no nonce
/// repeats under a key. The associated data binds the chunk to its file (attachment id and key
/// id), its place (index) and whether it is the last one, so a chunk moved to another file or
/// another place, a reordering, and a truncation (the new last chunk was not sealed as last)
/// all fail authentication. The file's metadata (name, type, SHA-256) is sealed under the same
/// key with an index no chunk can have, so destroying the key destroys the name as well.
///
/// Sealed chunk layout: ciphertext ‖ tag (16).
/// </summary>
public static class ChunkCipher
{
    public const int ChunkSize = 256 * 1024;
    public const int TagSize = 16, NonceSize = 12, PrefixSize = 4, KeyIdSize = 16;
    const ulong MetaIndex = ulong.MaxValue;
    static readonly byte[] ChunkLabel = "ams/attachment/chunk/v1"u8.ToArray();
    static readonly byte[] MetaLabel = "ams/attachment/meta/v1"u8.ToArray();

    /// <summary>How many chunks a file of <paramref name="size"/> bytes has.</summary>
    public static long ChunkCount(long size, int chunkSize = ChunkSize) => (size + chunkSize - 1) / chunkSize;

    /// <summary>Seals one chunk into <paramref name="output"/> (plaintext length + <see cref="TagSize"/> bytes).</summary>
    public static void Seal(AesGcm aes, ReadOnlySpan<byte> prefix, long attachmentId, ReadOnlySpan<byte> keyId, long index, bool final,
        ReadOnlySpan<byte> plaintext, Span<byte> output)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        Nonce(nonce, prefix, (ulong)index);
        Span<byte> ad = stackalloc byte[AdSize];
        Ad(ad, ChunkLabel, attachmentId, keyId, (ulong)index, final);
        aes.Encrypt(nonce, plaintext, output[..plaintext.Length], output.Slice(plaintext.Length, TagSize), ad);
    }

    /// <summary>Opens one chunk into <paramref name="plaintext"/>; false when it does not authenticate (nothing usable is left in the buffer).</summary>
    public static bool TryOpen(AesGcm aes, ReadOnlySpan<byte> prefix, long attachmentId, ReadOnlySpan<byte> keyId, long index, bool final,
        ReadOnlySpan<byte> sealedChunk, Span<byte> plaintext)
    {
        if (sealedChunk.Length < TagSize || plaintext.Length < sealedChunk.Length - TagSize) return false;
        var length = sealedChunk.Length - TagSize;
        Span<byte> nonce = stackalloc byte[NonceSize];
        Nonce(nonce, prefix, (ulong)index);
        Span<byte> ad = stackalloc byte[AdSize];
        Ad(ad, ChunkLabel, attachmentId, keyId, (ulong)index, final);
        try
        {
            aes.Decrypt(nonce, sealedChunk[..length], sealedChunk[length..], plaintext[..length], ad);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    /// <summary>What the API shows of a file, sealed under its key.</summary>
    public sealed record Meta(string Name, string ContentType, string Sha256);

    public static byte[] SealMeta(AesGcm aes, ReadOnlySpan<byte> prefix, long attachmentId, ReadOnlySpan<byte> keyId, Meta meta)
    {
        var plaintext = Encoding.UTF8.GetBytes($"{meta.Sha256}\n{meta.ContentType}\n{meta.Name}");
        var output = new byte[plaintext.Length + TagSize];
        Span<byte> nonce = stackalloc byte[NonceSize];
        Nonce(nonce, prefix, MetaIndex);
        Span<byte> ad = stackalloc byte[AdSize];
        Ad(ad, MetaLabel, attachmentId, keyId, MetaIndex, true);
        aes.Encrypt(nonce, plaintext, output.AsSpan(0, plaintext.Length), output.AsSpan(plaintext.Length), ad);
        return output;
    }

    public static Meta? OpenMeta(AesGcm aes, ReadOnlySpan<byte> prefix, long attachmentId, ReadOnlySpan<byte> keyId, byte[] sealedMeta)
    {
        if (sealedMeta.Length < TagSize) return null;
        var plaintext = new byte[sealedMeta.Length - TagSize];
        Span<byte> nonce = stackalloc byte[NonceSize];
        Nonce(nonce, prefix, MetaIndex);
        Span<byte> ad = stackalloc byte[AdSize];
        Ad(ad, MetaLabel, attachmentId, keyId, MetaIndex, true);
        try
        {
            aes.Decrypt(nonce, sealedMeta.AsSpan(0, plaintext.Length), sealedMeta.AsSpan(plaintext.Length), plaintext, ad);
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
        var parts = Encoding.UTF8.GetString(plaintext).Split('\n', 3);
        return parts.Length == 3 ? new Meta(parts[2], parts[1], parts[0]) : null;
    }

    static void Nonce(Span<byte> nonce, ReadOnlySpan<byte> prefix, ulong index)
    {
        prefix[..PrefixSize].CopyTo(nonce);
        BinaryPrimitives.WriteUInt64BigEndian(nonce[PrefixSize..], index);
    }

    // label (length-prefixed) ‖ attachment id (8) ‖ key id (16) ‖ index (8) ‖ final (1): fixed widths, so no two encode alike.
    const int MaxLabel = 32;
    const int AdSize = 1 + MaxLabel + 8 + KeyIdSize + 8 + 1;

    static void Ad(Span<byte> ad, byte[] label, long attachmentId, ReadOnlySpan<byte> keyId, ulong index, bool final)
    {
        ad.Clear();
        ad[0] = (byte)label.Length;
        label.CopyTo(ad[1..]);
        var at = 1 + MaxLabel;
        BinaryPrimitives.WriteInt64BigEndian(ad[at..], attachmentId);
        keyId[..KeyIdSize].CopyTo(ad[(at + 8)..]);
        BinaryPrimitives.WriteUInt64BigEndian(ad[(at + 8 + KeyIdSize)..], index);
        ad[at + 8 + KeyIdSize + 8] = final ? (byte)1 : (byte)0;
    }
}
