using System.Text;

namespace Ams.Infrastructure;

/// <summary>Rules for user-written text that several validators share.</summary>
public static class Text
{
    /// <summary>Length in Unicode scalar values, the way people (and MariaDB's utf8mb4) count characters.</summary>
    public static int Length(string value) => value.EnumerateRunes().Count();

    /// <summary>
    /// False for lone surrogates: they cannot be stored as utf8mb4 and would make two
    /// different passwords hash alike after UTF-8 replacement.
    /// </summary>
    public static bool IsWellFormed(string value)
    {
        var rest = value.AsSpan();
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(rest, out _, out var used) != System.Buffers.OperationStatus.Done) return false;
            rest = rest[used..];
        }
        return true;
    }

    /// <summary>
    /// True when nothing in it shows: only spaces, format characters (zero-width space, joiners,
    /// byte-order mark, direction marks), control characters, variation selectors and the blank
    /// fillers. A name or title like that reads as missing, or as someone else's.
    /// </summary>
    public static bool IsBlank(string value)
    {
        foreach (var rune in value.EnumerateRunes())
        {
            var invisible = Rune.IsWhiteSpace(rune)
                || Rune.GetUnicodeCategory(rune) is System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.Control
                || rune.Value is >= 0xFE00 and <= 0xFE0F or >= 0xE0100 and <= 0xE01EF or >= 0x180B and <= 0x180F or 0x034F or 0x17B4 or 0x17B5
                    or 0x115F or 0x1160 or 0x3164 or 0xFFA0 or 0x2800;
            if (!invisible) return false;
        }
        return true;
    }

    /// <summary>
    /// Control characters other than tab and the line breaks: NUL, escape sequences a terminal
    /// would obey when a script prints a message, and C1 controls. The browser's form refuses NUL
    /// already; the JSON API took it and stored it.
    /// </summary>
    public static bool HasControlCharactersBesidesLineBreaks(string value) => value.Any(c => char.IsControl(c) && c is not ('\t' or '\n' or '\r'));

    /// <summary>Control characters and the bidirectional overrides used to disguise names.</summary>
    public static bool HasControlCharacters(string value) => value.Any(c =>
        char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069');
}
