using System.Globalization;
using System.Text;

namespace Ams.Features.Attachments;

/// <summary>Uploaders' file names made harmless, and the RFC 6266 / 5987 header that gives them back.</summary>
public static class FileNames
{
    public const int MaxLength = 200;
    public const string Fallback = "file";

    /// <summary>
    /// The last path segment (either slash), without control, format (bidirectional overrides) or
    /// invalid characters, trimmed of spaces and dots at the ends, at most <see cref="MaxLength"/>
    /// characters (never a split surrogate pair), a long one cut before its extension so that it
    /// still opens with the right program; <see cref="Fallback"/> when nothing is left.
    /// </summary>
    public static string Clean(string? name)
    {
        if (string.IsNullOrEmpty(name)) return Fallback;
        var last = name.LastIndexOfAny(['/', '\\']);
        if (last >= 0) name = name[(last + 1)..];
        var text = new StringBuilder(name.Length);
        foreach (var rune in name.EnumerateRunes())
        {
            if (rune == Rune.ReplacementChar) continue;
            var category = Rune.GetUnicodeCategory(rune);
            if (category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator
                or UnicodeCategory.ParagraphSeparator) continue;
            text.Append(rune.ToString());
        }
        var cleaned = text.ToString().Trim().Trim('.').Trim();
        if (cleaned.Length > MaxLength)
        {
            var dot = cleaned.LastIndexOf('.');
            var extension = dot > 0 && cleaned.Length - dot <= MaxExtension ? cleaned[dot..] : "";
            cleaned = Cut(cleaned[..(cleaned.Length - extension.Length)], MaxLength - extension.Length).TrimEnd().TrimEnd('.').TrimEnd() + extension;
        }
        return cleaned.Length == 0 ? Fallback : cleaned;

        static string Cut(string text, int length) =>
            text[..(char.IsHighSurrogate(text[length - 1]) ? length - 1 : length)];
    }

    // Longer than any extension a program goes by (".download", ".torrent"): a dot in a long name is not one.
    const int MaxExtension = 16;

    /// <summary>
    /// A multipart <c>filename="…"</c> as browsers and curl write it: the HTML standard has a quote
    /// sent as <c>%22</c> and line breaks as <c>%0D</c> and <c>%0A</c> (a name with a quote was
    /// stored and shown with <c>%22</c>).
    /// </summary>
    public static string? FromFormEncoding(string? name) =>
        name?.Replace("%22", "\"", StringComparison.Ordinal).Replace("%0D", "", StringComparison.OrdinalIgnoreCase).Replace("%0A", "", StringComparison.OrdinalIgnoreCase);

    /// <summary><c>attachment; filename="ascii"; filename*=UTF-8''percent-encoded</c> (or <c>inline</c>).</summary>
    public static string ContentDisposition(string name, bool inline)
    {
        var ascii = new StringBuilder(name.Length);
        foreach (var c in name) ascii.Append(c is >= ' ' and < (char)0x7F and not '"' and not '\\' and not '%' ? c : '_');
        var encoded = new StringBuilder(name.Length * 3);
        foreach (var b in Encoding.UTF8.GetBytes(name))
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || "!#$&+-.^_`|~".Contains(c)) encoded.Append(c);
            else encoded.Append(CultureInfo.InvariantCulture, $"%{b:X2}");
        }
        return $"{(inline ? "inline" : "attachment")}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}";
    }
}
