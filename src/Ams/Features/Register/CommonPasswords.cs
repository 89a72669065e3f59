using System.Collections.Frozen;

namespace Ams.Features.Register;

/// <summary>
/// The bundled common-password list (common-passwords.txt, 49,233 entries, most common first;
/// licence beside it). Only entries that the length rule would let through are kept in
/// memory, since shorter ones are refused before the list is asked.
/// </summary>
public static class CommonPasswords
{
    static readonly Lazy<FrozenSet<string>> Candidates = new(Load);

    public static bool Contains(string password) => Candidates.Value.Contains(password.ToLowerInvariant());

    public static int LoadedCount => Candidates.Value.Count;

    static FrozenSet<string> Load()
    {
        using var stream = typeof(CommonPasswords).Assembly.GetManifestResourceStream("Ams.Features.Register.common-passwords.txt")
            ?? throw new InvalidOperationException("common-passwords.txt is not embedded.");
        using var reader = new StreamReader(stream);
        var keep = new HashSet<string>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
            if (Infrastructure.Text.Length(line) >= Validator.MinPasswordLength)
                keep.Add(line.ToLowerInvariant());
        return keep.ToFrozenSet(StringComparer.Ordinal);
    }
}
