using Ams.Infrastructure;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Register;

/// <summary>
/// Invite codes for <c>Registration:Mode=invite</c>: <c>ami_</c> + 256 random bits, made by
/// <c>Ams admin invite</c>, shown once. Only their SHA-256 is stored and looked up, so a database
/// dump holds no usable code, and the lookup compares hashes of the code rather than the code:
/// its timing can tell an attacker nothing about any stored code (the constant-time property that
/// matters here; the code itself is never compared).
/// </summary>
public static class Invites
{
    public const string Prefix = "ami_";

    public static async Task<string> CreateAsync(MariaDb db, int uses, DateTime createdAt)
    {
        var code = Prefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        await using var connection = await db.OpenConnectionAsync();
        await connection.ExecuteAsync("INSERT INTO invites (code_hash, uses_left, created_at) VALUES (@hash, @uses, @createdAt)",
            new { hash = HashOf(code), uses, createdAt }, commandTimeout: connection.CommandTimeout());
        return code;
    }

    /// <summary>Whether the code is known with a use left (a cheap check before the password hash; redeeming decides).</summary>
    public static async Task<bool> IsUsableAsync(MariaDb db, string? code, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(code)) return false;
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM invites WHERE code_hash = @hash AND uses_left > 0",
            new { hash = HashOf(code) }, commandTimeout: connection.CommandTimeout()) > 0;
    }

    public static string HashOf(string code) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(code)));

    static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
