using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Ams.Features.Attachments;
using Ams.Infrastructure.Files;

namespace Ams.Tests.Attachments;

/// <summary>
/// The chunk format as documented in ChunkCipher, rebuilt here from the documentation: a change to
/// the nonce or the associated data breaks files already stored, and a field left out of the
/// associated data lets a chunk be moved, reordered or truncated unnoticed.
/// </summary>
public sealed class ChunkCipherTests
{
    static readonly byte[] Key = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    static readonly byte[] Prefix = [0xA1, 0xB2, 0xC3, 0xD4];
    static readonly byte[] KeyId = Enumerable.Range(0x40, 16).Select(i => (byte)i).ToArray();
    const long AttachmentId = 0x0102030405060708;

    // label length (1) ‖ label, zero-padded to 32 ‖ attachment id (8, big-endian) ‖ key id (16) ‖ index (8, big-endian) ‖ final (1)
    static byte[] DocumentedAd(string label, long attachmentId, byte[] keyId, ulong index, bool final)
    {
        var ad = new byte[1 + 32 + 8 + 16 + 8 + 1];
        ad[0] = (byte)label.Length;
        Encoding.ASCII.GetBytes(label).CopyTo(ad, 1);
        BinaryPrimitives.WriteInt64BigEndian(ad.AsSpan(33), attachmentId);
        keyId.CopyTo(ad, 41);
        BinaryPrimitives.WriteUInt64BigEndian(ad.AsSpan(57), index);
        ad[65] = final ? (byte)1 : (byte)0;
        return ad;
    }

    static byte[] DocumentedNonce(ulong index)
    {
        var nonce = new byte[12];
        Prefix.CopyTo(nonce, 0);
        BinaryPrimitives.WriteUInt64BigEndian(nonce.AsSpan(4), index);
        return nonce;
    }

    static byte[] DocumentedSeal(string label, ulong index, bool final, byte[] plaintext)
    {
        using var aes = new AesGcm(Key, ChunkCipher.TagSize);
        var output = new byte[plaintext.Length + ChunkCipher.TagSize];
        aes.Encrypt(DocumentedNonce(index), plaintext, output.AsSpan(0, plaintext.Length), output.AsSpan(plaintext.Length),
            DocumentedAd(label, AttachmentId, KeyId, index, final));
        return output;
    }

    static byte[] Seal(long index, bool final, byte[] plaintext, long attachmentId = AttachmentId)
    {
        using var aes = new AesGcm(Key, ChunkCipher.TagSize);
        var output = new byte[plaintext.Length + ChunkCipher.TagSize];
        ChunkCipher.Seal(aes, Prefix, attachmentId, KeyId, index, final, plaintext, output);
        return output;
    }

    static bool TryOpen(byte[] sealedChunk, long index = 3, bool final = false, long attachmentId = AttachmentId, byte[]? keyId = null, int? room = null)
    {
        using var aes = new AesGcm(Key, ChunkCipher.TagSize);
        var plaintext = new byte[room ?? Math.Max(0, sealedChunk.Length - ChunkCipher.TagSize)];
        return ChunkCipher.TryOpen(aes, Prefix, attachmentId, keyId ?? KeyId, index, final, sealedChunk, plaintext);
    }

    [Fact]
    public void A_chunk_is_sealed_exactly_as_documented()
    {
        var plaintext = "seventeen bytes!!"u8.ToArray();
        Assert.Equal(DocumentedSeal("ams/attachment/chunk/v1", 3, false, plaintext), Seal(3, false, plaintext));
        Assert.Equal(DocumentedSeal("ams/attachment/chunk/v1", 0x0A0B0C0D0E0F1011, true, plaintext), Seal(0x0A0B0C0D0E0F1011, true, plaintext));
    }

    [Fact]
    public void The_metadata_is_sealed_exactly_as_documented_and_opens_with_a_newline_in_the_name()
    {
        using var aes = new AesGcm(Key, ChunkCipher.TagSize);
        var meta = new ChunkCipher.Meta("two\nlines.txt", "text/plain", "ab12");
        var sealedMeta = ChunkCipher.SealMeta(aes, Prefix, AttachmentId, KeyId, meta);
        Assert.Equal(DocumentedSeal("ams/attachment/meta/v1", ulong.MaxValue, true, "ab12\ntext/plain\ntwo\nlines.txt"u8.ToArray()), sealedMeta);
        Assert.Equal(meta, ChunkCipher.OpenMeta(aes, Prefix, AttachmentId, KeyId, sealedMeta));
    }

    [Fact]
    public void A_chunk_moved_to_another_file_key_or_place_or_with_its_last_flag_changed_does_not_open()
    {
        var chunk = Seal(3, false, "some bytes of a file"u8.ToArray());
        Assert.True(TryOpen(chunk));
        Assert.False(TryOpen(chunk, attachmentId: AttachmentId + 1));
        Assert.False(TryOpen(chunk, keyId: [.. KeyId[..15], (byte)(KeyId[15] ^ 1)]));
        Assert.False(TryOpen(chunk, index: 4));
        Assert.False(TryOpen(chunk, final: true));   // a truncated file: its new last chunk was not sealed as last
        chunk[0] ^= 1;
        Assert.False(TryOpen(chunk));
    }

    [Fact]
    public void Short_input_and_a_small_buffer_are_refused_without_an_exception_and_an_empty_chunk_opens()
    {
        var empty = Seal(3, false, []);
        Assert.Equal(ChunkCipher.TagSize, empty.Length);
        Assert.True(TryOpen(empty));
        Assert.False(TryOpen(empty[..^1]));
        var chunk = Seal(3, false, new byte[100]);
        Assert.False(TryOpen(chunk, room: 99));
        Assert.True(TryOpen(chunk, room: 100));
    }

    [Fact]
    public void Metadata_that_is_short_tampered_or_not_three_lines_opens_to_null()
    {
        using var aes = new AesGcm(Key, ChunkCipher.TagSize);
        Assert.Null(ChunkCipher.OpenMeta(aes, Prefix, AttachmentId, KeyId, new byte[ChunkCipher.TagSize - 1]));
        var sealedMeta = ChunkCipher.SealMeta(aes, Prefix, AttachmentId, KeyId, new ChunkCipher.Meta("a.txt", "text/plain", "ab"));
        Assert.Null(ChunkCipher.OpenMeta(aes, Prefix, AttachmentId + 1, KeyId, sealedMeta));
        // Authentic but malformed (two fields): refused, not an exception.
        Assert.Null(ChunkCipher.OpenMeta(aes, Prefix, AttachmentId, KeyId, DocumentedSeal("ams/attachment/meta/v1", ulong.MaxValue, true, "ab\ntext/plain"u8.ToArray())));
    }
}

public sealed class SnifferTests
{
    [Theory]
    [InlineData("89504E470D0A1A0A", "image/png")]
    [InlineData("FFD8FFE0", "image/jpeg")]
    [InlineData("474946383761", "image/gif")]                       // GIF87a
    [InlineData("474946383961", "image/gif")]                       // GIF89a
    [InlineData("52494646000000005745425056503820", "image/webp")]  // RIFF....WEBPVP8
    [InlineData("524946460000000057454250", "image/webp")]          // exactly 12 bytes
    [InlineData("5249464600000000574542", "application/octet-stream")] // 11 bytes: too short for WEBP
    [InlineData("524946460000000057415645", "audio/wav")]           // RIFF....WAVE, exactly 12
    [InlineData("5249464600000000574156", "application/octet-stream")] // 11 bytes: too short for WAVE
    [InlineData("524946460000000041564920", "application/octet-stream")] // RIFF....AVI : neither
    [InlineData("255044462D", "application/pdf")]
    [InlineData("504B0304", "application/zip")]
    [InlineData("504B0506", "application/zip")]
    [InlineData("504B0708", "application/zip")]
    [InlineData("1F8B08", "application/gzip")]
    [InlineData("377ABCAF271C", "application/x-7z-compressed")]
    [InlineData("494433", "audio/mpeg")]                            // ID3
    [InlineData("FFFB", "audio/mpeg")]
    [InlineData("FFF3", "audio/mpeg")]
    [InlineData("FFF2", "audio/mpeg")]
    [InlineData("FFFA", "application/octet-stream")]
    [InlineData("FF", "application/octet-stream")]                  // one byte: no frame sync
    [InlineData("4F676753", "audio/ogg")]
    [InlineData("664C6143", "audio/flac")]
    [InlineData("000000206674797069736F6D", "video/mp4")]           // ....ftypisom, exactly 12
    [InlineData("0000002066747970697336", "application/octet-stream")] // 11 bytes
    [InlineData("1A45DFA3", "video/webm")]
    [InlineData("3C7376672F3E", "application/octet-stream")]        // <svg/>: text formats are never recognised
    [InlineData("", "application/octet-stream")]
    public void Content_types_come_from_the_first_bytes(string hex, string contentType) =>
        Assert.Equal(contentType, Sniffer.ContentType(Convert.FromHexString(hex)));

    [Theory]
    [InlineData("image/png", true)]
    [InlineData("image/jpeg", true)]
    [InlineData("image/gif", true)]
    [InlineData("image/webp", true)]
    [InlineData("image/svg+xml", false)]
    [InlineData("application/octet-stream", false)]
    public void Only_raster_images_are_previewed(string contentType, bool previewable) =>
        Assert.Equal(previewable, Sniffer.IsPreviewable(contentType));
}

public sealed class FileNameTests
{
    [Theory]
    [InlineData("/etc/passwd", "passwd")]
    [InlineData("/passwd", "passwd")]                                 // a slash first
    [InlineData("\\\\server\\share\\a.txt", "a.txt")]
    [InlineData("a\uFFFDb.txt", "ab.txt")]
    [InlineData("a\uD800b.txt", "ab.txt")]                          // a lone surrogate
    [InlineData(" ..report.pdf.. ", "report.pdf")]
    public void Names_are_cut_to_their_last_segment_and_cleaned(string name, string cleaned) =>
        Assert.Equal(cleaned, FileNames.Clean(name));

    [Fact]
    public void Names_keep_exactly_the_maximum_length_and_never_split_a_surrogate_pair()
    {
        Assert.Equal(FileNames.MaxLength, FileNames.Clean(new string('a', FileNames.MaxLength)).Length);
        Assert.Equal(FileNames.MaxLength, FileNames.Clean(new string('a', FileNames.MaxLength + 1)).Length);
        var pairs = FileNames.Clean(string.Concat(Enumerable.Repeat("😀", FileNames.MaxLength)));
        Assert.Equal(FileNames.MaxLength, pairs.Length);
        Assert.False(char.IsHighSurrogate(pairs[^1]));
    }

    [Fact]
    public void A_long_name_is_cut_before_its_extension()
    {
        var cut = FileNames.Clean(new string('a', 5_000) + ".txt");
        Assert.Equal(new string('a', FileNames.MaxLength - 4) + ".txt", cut);
        var pairs = FileNames.Clean(string.Concat(Enumerable.Repeat("😀", 300)) + ".tar.gz");
        Assert.Equal(FileNames.MaxLength - 1, pairs.Length);   // 197 before the extension would split a pair: 196
        Assert.EndsWith("😀.gz", pairs);
        // A dot far from the end is no extension: the name is cut as it comes, and not left ending in a dot.
        Assert.Equal("x." + new string('b', FileNames.MaxLength - 2), FileNames.Clean("x." + new string('b', 5_000)));
        Assert.Equal(new string('a', FileNames.MaxLength - 1), FileNames.Clean(new string('a', FileNames.MaxLength - 1) + "." + new string('b', 20)));
    }

    [Fact]
    public void The_header_replaces_what_a_quoted_ascii_name_cannot_carry_and_percent_encodes_the_rest()
    {
        Assert.Equal("attachment; filename=\"a_b_c_d_e.txt\"; filename*=UTF-8''a%7Fb%22c%5Cd%25e.txt",
            FileNames.ContentDisposition("a\u007Fb\"c\\d%e.txt", inline: false));
        Assert.Equal("inline; filename=\"_.png\"; filename*=UTF-8''%C3%A9.png", FileNames.ContentDisposition("é.png", inline: true));
    }
}
