using System.Security.Cryptography;
using System.Text;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using OtpNet;

namespace Ams.Tests.Account;

/// <summary>Recovery codes are stored as keyed hashes; codes stored by older versions keep working.</summary>
public sealed class RecoveryCodeTests(Services services) : IClassFixture<Services>
{
    static string LegacyHash(string userId, string normalized) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"ams/recovery/v1|{userId}|{normalized}")));

    // The documented v2 hash: HMAC-SHA256 under a key derived from the primary master key.
    static string KeyedHash(string userId, string normalized)
    {
        var primary = Convert.FromBase64String(Services.MasterKeys.Split(',')[0].Split(':', 2)[1]);
        var key = HKDF.DeriveKey(HashAlgorithmName.SHA256, primary, 32, salt: [], info: "ams/recovery-code-hmac/v2"u8.ToArray());
        return Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"ams/recovery/v2|{userId}|{normalized}")));
    }

    [Fact]
    public async Task New_codes_are_keyed_hashes_and_an_old_unkeyed_hash_still_signs_in_once()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("rc");
        var userId = (await app.RegisterAsync(name))["id"].Str();
        var token = await app.LoginAsync(name);
        var setup = await (await app.CallAsync("POST", "/api/2fa/setup", new { password = Api.Password }, token, 200)).JsonAsync();
        var secret = Base32Encoding.ToBytes(setup["secret"].Str());
        var enabled = await (await app.CallAsync("POST", "/api/2fa/enable", new { code = new Totp(secret).ComputeTotp() }, token, 200)).JsonAsync();
        var codes = enabled["recoveryCodes"]!.AsArray().Select(c => c.Str()).ToList();

        var stored = await services.SqlAsync($"SELECT code_hash FROM recovery_codes WHERE user_id = {userId}");
        foreach (var code in codes)
        {
            Assert.DoesNotContain(LegacyHash(userId, code.Replace("-", "")), stored);   // not the unkeyed SHA-256 any more
            Assert.Contains(KeyedHash(userId, code.Replace("-", "")), stored);
        }

        // A code stored by the previous version (unkeyed SHA-256) signs in, once.
        await services.SqlAsync($"INSERT INTO recovery_codes (user_id, code_hash) VALUES ({userId}, '{LegacyHash(userId, "abcdefghijkm")}')");
        async Task<int> SecondStepAsync(string code)
        {
            var challenge = (await (await app.CallAsync("POST", "/api/login", new { username = name, password = Api.Password }, null, 200)).JsonAsync())["challenge"].Str();
            return (await app.CallAsync("POST", "/api/login/2fa", new { challenge, code }, null, null)).Status();
        }
        Assert.Equal(200, await SecondStepAsync("abcd-efgh-ijkm"));
        Assert.Equal(401, await SecondStepAsync("abcd-efgh-ijkm"));
        Assert.Equal(200, await SecondStepAsync(codes[0]));
        Assert.Equal(401, await SecondStepAsync(codes[0]));
        var kinds = (await app.SecurityEventsAsync(token)).Select(e => e!["kind"].Str()).ToList();
        Assert.Equal(2, kinds.Count(k => k == "2fa.recovery-code-used"));
        Assert.Contains("2fa.enabled", kinds);
    }

    [Fact]
    public async Task Codes_made_under_the_old_master_key_still_sign_in_after_a_new_key_becomes_the_first()
    {
        var (name, _, _, codes) = await (await services.AppAsync()).TwoFactorUserAsync("rk");

        var newKey = "next:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        await using var rotated = await services.StartAppAsync(settings: [new("Crypto:MasterKeys", $"{newKey},{Services.MasterKeys}")]);
        var challenge = (await (await rotated.CallAsync("POST", "/api/login", new { username = name, password = Api.Password }, null, 200)).JsonAsync())["challenge"].Str();
        await rotated.CallAsync("POST", "/api/login/2fa", new { challenge, code = codes[0] }, null, 200);
    }
}
