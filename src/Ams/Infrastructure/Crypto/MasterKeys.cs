using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Ams.Infrastructure.Crypto;

/// <summary>
/// Key-encryption keys from <c>Crypto:MasterKeys</c> (<c>id:base64key[,id:base64key…]</c>):
/// the first wraps new data keys, every one of them unwraps. Rotation = put a new key first,
/// run <c>--rotate-keys</c>, then drop the old one.
/// </summary>
public sealed partial class MasterKeys
{
    public const int KeySize = 32;
    readonly Dictionary<string, byte[]> keys;

    public string PrimaryId { get; }
    public IReadOnlyCollection<string> Ids => keys.Keys;

    MasterKeys(List<(string Id, byte[] Key)> parsed)
    {
        PrimaryId = parsed[0].Id;
        keys = parsed.ToDictionary(k => k.Id, k => k.Key, StringComparer.Ordinal);
    }

    public bool TryGet(string id, out byte[] key) => keys.TryGetValue(id, out key!);
    public byte[] Primary => keys[PrimaryId];

    /// <summary>Parses the setting; errors name the entry but never echo key material.</summary>
    public static MasterKeys Parse(string setting)
    {
        var parsed = new List<(string, byte[])>();
        var entries = setting.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        for (var i = 0; i < entries.Length; i++)
        {
            var colon = entries[i].IndexOf(':');
            var id = colon > 0 ? entries[i][..colon] : "";
            if (!IdPattern().IsMatch(id))
                throw new ConfigurationException($"Crypto:MasterKeys entry {i + 1}: expected 'id:base64key' with an id of 1–32 letters, digits, '_' or '-'.");
            byte[] key;
            try { key = Convert.FromBase64String(entries[i][(colon + 1)..]); }
            catch (FormatException) { throw new ConfigurationException($"Crypto:MasterKeys key '{id}' is not valid base64."); }
            if (key.Length != KeySize)
                throw new ConfigurationException($"Crypto:MasterKeys key '{id}' must be {KeySize} bytes (base64 of 32 random bytes), not {key.Length}.");
            if (parsed.Any(p => p.Item1 == id))
                throw new ConfigurationException($"Crypto:MasterKeys lists the id '{id}' twice.");
            parsed.Add((id, key));
        }
        if (parsed.Count == 0) throw new ConfigurationException("Crypto:MasterKeys is empty.");
        return new MasterKeys(parsed);
    }

    /// <summary>
    /// Production refuses to run without configured keys. Development makes one in the data
    /// folder (kept across runs, git-ignored) and says so loudly.
    /// </summary>
    public static MasterKeys Load(IConfiguration config, IHostEnvironment environment, ILogger logger)
    {
        if (config["Crypto:MasterKeys"] is { Length: > 0 } setting) return Parse(setting);
        if (!environment.IsDevelopment())
            throw new ConfigurationException(
                "Crypto:MasterKeys is not set. Set Crypto__MasterKeys to 'id:base64key' (e.g. \"k1:$(openssl rand -base64 32)\"); " +
                "AMS will not store data without a master key.");
        var file = Path.GetFullPath(config["Crypto:DevKeyFile"] ?? Path.Combine(".data", "dev-master-keys"));
        if (!File.Exists(file))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllText(file, $"dev:{Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeySize))}\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        logger.LogWarning("""
            ************************************************************************
            * DEVELOPMENT MASTER KEY in {File}.
            * Anyone with that file can decrypt this database. Never use it in
            * production: set Crypto__MasterKeys instead.
            ************************************************************************
            """, file);
        return Parse(File.ReadAllText(file));
    }

    [GeneratedRegex(@"\A[A-Za-z0-9_-]{1,32}\z")]
    private static partial Regex IdPattern();
}

public static class EnvelopeEncryption
{
    /// <summary>The master keys and the envelope; the entropy slice provides the mixer and the mint counter.</summary>
    public static IHostApplicationBuilder AddEnvelopeEncryption(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton(sp => MasterKeys.Load(builder.Configuration, builder.Environment,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Ams.Crypto")));
        builder.Services.AddSingleton<Envelope>();
        return builder;
    }
}
