namespace Ams.Features.Attachments;

/// <summary>
/// The content type of a file from its first bytes (magic numbers), never from the uploader's
/// name or header: anything not recognised is <c>application/octet-stream</c>. Text formats
/// (HTML, SVG, script) are deliberately never recognised, so no upload is served as one.
/// </summary>
public static class Sniffer
{
    public const string OctetStream = "application/octet-stream";

    /// <summary>The raster images the browser shows inline as previews.</summary>
    public static bool IsPreviewable(string contentType) => contentType is "image/png" or "image/jpeg" or "image/gif" or "image/webp";

    public static string ContentType(ReadOnlySpan<byte> b)
    {
        if (b.StartsWith((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])) return "image/png";
        if (b.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])) return "image/jpeg";
        if (b.StartsWith("GIF87a"u8) || b.StartsWith("GIF89a"u8)) return "image/gif";
        if (b.Length >= 12 && b.StartsWith("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8)) return "image/webp";
        if (b.Length >= 12 && b.StartsWith("RIFF"u8) && b[8..12].SequenceEqual("WAVE"u8)) return "audio/wav";
        if (b.StartsWith("%PDF-"u8)) return "application/pdf";
        if (b.StartsWith("PK\x03\x04"u8) || b.StartsWith("PK\x05\x06"u8) || b.StartsWith("PK\x07\x08"u8)) return "application/zip";
        if (b.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B])) return "application/gzip";
        if (b.StartsWith((ReadOnlySpan<byte>)[0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C])) return "application/x-7z-compressed";
        if (b.StartsWith("ID3"u8) || b.Length >= 2 && b[0] == 0xFF && b[1] is 0xFB or 0xF3 or 0xF2) return "audio/mpeg";
        if (b.StartsWith("OggS"u8)) return "audio/ogg";
        if (b.StartsWith("fLaC"u8)) return "audio/flac";
        if (b.Length >= 12 && b[4..8].SequenceEqual("ftyp"u8)) return "video/mp4";
        if (b.StartsWith((ReadOnlySpan<byte>)[0x1A, 0x45, 0xDF, 0xA3])) return "video/webm";
        return OctetStream;
    }
}
