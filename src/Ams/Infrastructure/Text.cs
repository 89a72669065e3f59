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

    /// <summary>Control characters and the bidirectional overrides used to disguise names.</summary>
    public static bool HasControlCharacters(string value) => value.Any(c =>
        char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069');
}
