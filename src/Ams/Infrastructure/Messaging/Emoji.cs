using System.Globalization;
using System.Text;

namespace Ams.Infrastructure.Messaging;

/// <summary>
/// What a reaction may be: exactly one emoji. One extended grapheme cluster (<see cref="StringInfo"/>)
/// of at most <see cref="MaxRunes"/> code points, shaped as Unicode's emoji sequences (UTS #51):
/// a flag (two regional indicators); a keycap (0–9, # or *, VS16, U+20E3); or emoji elements
/// joined by ZWJ, each an emoji base (the Emoji code point ranges below) with an optional VS16,
/// an optional skin-tone modifier, and (after the black flag) a tag sequence ending in CANCEL TAG.
/// Letters, digits, punctuation, lone modifiers, text and two emoji are not one emoji.
/// Nor is one whose stored spelling (<see cref="Canonical"/>) is longer than <see cref="MaxRunes"/>.
/// </summary>
public static class Emoji
{
    /// <summary>
    /// The width of the reactions' emoji columns (<c>VARCHAR(16)</c>), in code points, which the
    /// stored spelling must fit: <see cref="Canonical"/> adds a VS16 after each element that is
    /// text by default, so six ❤ joined by ZWJ (11 code points as sent) are 17 stored, and MariaDB
    /// refused the row. The longest RGI sequences (kiss and couple ZWJ sequences with skin tones)
    /// have 10.
    /// </summary>
    public const int MaxRunes = 16;

    const int Zwj = 0x200D, Vs16 = 0xFE0F, Keycap = 0x20E3, CancelTag = 0xE007F, BlackFlag = 0x1F3F4;

    // Code points with the Emoji property that can stand alone as a picture (digits, # and * only in keycaps).
    static readonly (int From, int To)[] Bases =
    [
        (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122), (0x2139, 0x2139),
        (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328), (0x23CF, 0x23CF), (0x23E9, 0x23F3),
        (0x23F8, 0x23FA), (0x24C2, 0x24C2), (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE),
        (0x2600, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55),
        (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299),
        (0x1F004, 0x1F004), (0x1F0CF, 0x1F0CF), (0x1F170, 0x1F171), (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E),
        (0x1F191, 0x1F19A), (0x1F201, 0x1F202), (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A),
        (0x1F250, 0x1F251), (0x1F300, 0x1F3FA), (0x1F400, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F7E0, 0x1F7FF),
        (0x1F90C, 0x1F9FF), (0x1FA70, 0x1FAFF),
    ];

    public static bool IsOne(string? text) => IsShapedAsOne(text) && Canonical(text!).EnumerateRunes().Count() <= MaxRunes;

    static bool IsShapedAsOne(string? text)
    {
        if (string.IsNullOrEmpty(text) || !Ams.Infrastructure.Text.IsWellFormed(text)) return false;
        var runes = text.EnumerateRunes().Select(r => r.Value).ToArray();
        if (runes.Length > MaxRunes || new StringInfo(text).LengthInTextElements != 1) return false;
        if (runes.Length == 2 && IsRegionalIndicator(runes[0]) && IsRegionalIndicator(runes[1])) return true;
        if (runes is [_, Vs16, Keycap] or [_, Keycap] && IsKeycapBase(runes[0])) return true;
        var i = 0;
        while (true)
        {
            if (i >= runes.Length || !IsBase(runes[i])) return false;
            var baseRune = runes[i++];
            if (i < runes.Length && runes[i] == Vs16) i++;
            if (i < runes.Length && runes[i] is >= 0x1F3FB and <= 0x1F3FF) i++;
            if (baseRune == BlackFlag && i < runes.Length && runes[i] is >= 0xE0020 and <= 0xE007E)
            {
                while (i < runes.Length && runes[i] is >= 0xE0020 and <= 0xE007E) i++;
                if (i >= runes.Length || runes[i++] != CancelTag) return false;
            }
            if (i == runes.Length) return true;
            if (runes[i++] != Zwj) return false;
        }
    }

    // Emoji outside the BMP that are text by default (Emoji_Presentation=No, UTS #51), so are
    // pictures only with VS16. Every emoji in the BMP is treated so (VS16 is harmless where redundant).
    static readonly (int From, int To)[] TextDefault =
    [
        (0x1F170, 0x1F171), (0x1F17E, 0x1F17F), (0x1F202, 0x1F202), (0x1F237, 0x1F237), (0x1F321, 0x1F321), (0x1F324, 0x1F32C),
        (0x1F336, 0x1F336), (0x1F37D, 0x1F37D), (0x1F396, 0x1F397), (0x1F399, 0x1F39B), (0x1F39E, 0x1F39F), (0x1F3CB, 0x1F3CE),
        (0x1F3D4, 0x1F3DF), (0x1F3F3, 0x1F3F3), (0x1F3F5, 0x1F3F5), (0x1F3F7, 0x1F3F7), (0x1F43F, 0x1F43F), (0x1F441, 0x1F441),
        (0x1F4FD, 0x1F4FD), (0x1F549, 0x1F54A), (0x1F56F, 0x1F570), (0x1F573, 0x1F579), (0x1F587, 0x1F587), (0x1F58A, 0x1F58D),
        (0x1F590, 0x1F590), (0x1F5A5, 0x1F5A5), (0x1F5A8, 0x1F5A8), (0x1F5B1, 0x1F5B2), (0x1F5BC, 0x1F5BC), (0x1F5C2, 0x1F5C4),
        (0x1F5D1, 0x1F5D3), (0x1F5DC, 0x1F5DE), (0x1F5E1, 0x1F5E1), (0x1F5E3, 0x1F5E3), (0x1F5E8, 0x1F5E8), (0x1F5EF, 0x1F5EF),
        (0x1F5F3, 0x1F5F3), (0x1F5FA, 0x1F5FA), (0x1F6CB, 0x1F6CB), (0x1F6CD, 0x1F6CF), (0x1F6E0, 0x1F6E5), (0x1F6E9, 0x1F6E9),
        (0x1F6F0, 0x1F6F0), (0x1F6F3, 0x1F6F3),
    ];

    /// <summary>
    /// One spelling per emoji, for <see cref="IsOne"/>'s emoji: keyboards send ❤ with VS16 or
    /// without, 👍 with a redundant one, and each was a reaction of its own. VS16 goes after every
    /// element that is text by default and nowhere else (nor before a skin tone, which makes it a
    /// picture already): the fully-qualified form for the common ones.
    /// </summary>
    public static string Canonical(string emoji)
    {
        var runes = emoji.EnumerateRunes().Where(r => r.Value != Vs16).ToArray();
        var text = new StringBuilder(emoji.Length + 2);
        for (var i = 0; i < runes.Length; i++)
        {
            text.Append(runes[i].ToString());
            var value = runes[i].Value;
            var textDefault = value is not (Zwj or Keycap) && (value < 0x10000 || InRanges(value, TextDefault));
            var skinTone = i + 1 < runes.Length && runes[i + 1].Value is >= 0x1F3FB and <= 0x1F3FF;
            if (textDefault && !skinTone) text.Append((char)Vs16);
        }
        return text.ToString();
    }

    static bool IsRegionalIndicator(int rune) => rune is >= 0x1F1E6 and <= 0x1F1FF;

    static bool IsKeycapBase(int rune) => rune is >= '0' and <= '9' or '#' or '*';

    static bool IsBase(int rune) => InRanges(rune, Bases);

    static bool InRanges(int rune, (int From, int To)[] ranges)
    {
        foreach (var (from, to) in ranges)
            if (rune >= from && rune <= to) return true;
        return false;
    }
}
