using System.Security.Cryptography;
using System.Text;
using Alba;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Tests.Messaging;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
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
    public async Task Codes_made_under_the_old_master_key_sign_in_after_a_new_key_becomes_the_first_and_after_the_old_one_is_dropped()
    {
        // A database of its own (its keys end up under other master keys than the class's), with
        // user ids of its own: the class's Redis keeps the TOTP steps and counters by user id.
        var database = "recovery_" + Guid.NewGuid().ToString("N")[..8];
        string name;
        List<string> codes;
        await using (var before = await services.StartAppAsync(database))
        {
            await services.MariaDb.ExecuteAsRootAsync($"USE `{database}`; ALTER TABLE users AUTO_INCREMENT = 7000000");
            (name, _, _, codes) = await before.TwoFactorUserAsync("rk");
        }

        var newKey = "next:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var bothKeys = $"{newKey},{Services.MasterKeys}";
        await using (var rotated = await services.StartAppAsync(database, [new("Crypto:MasterKeys", bothKeys)]))
        {
            Assert.Equal(200, await SecondStepAsync(rotated, name, codes[0]));
            var rotation = await KeyRotation.RunAsync(rotated.Services.GetRequiredService<MariaDb>(), MasterKeys.Parse(bothKeys), NullLogger.Instance);
            Assert.Equal(0, rotation.RemainingUnderOtherKeys);
        }
        // README's last step: the old key is dropped once the rotation reports none left under it.
        await using var after = await services.StartAppAsync(database, [new("Crypto:MasterKeys", newKey)]);
        Assert.Equal(200, await SecondStepAsync(after, name, codes[1]));
        Assert.Equal(401, await SecondStepAsync(after, name, codes[0]));

        // The dropped key's id used again for another key: no data key is left under it to show the
        // mismatch, but the codes made under the earlier key would be checked with the new one.
        var reused = "test:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        Assert.StartsWith("test:", Services.MasterKeys);
        var error = await Assert.ThrowsAsync<ConfigurationException>(() => services.StartAppAsync(database, [new("Crypto:MasterKeys", $"{newKey},{reused}")]));
        Assert.Equal("Crypto:MasterKeys key 'test' is not the key that id stood for before: recovery codes made under the earlier 'test' are checked with " +
            "a key derived from it and kept under that id. Give the new key an id never used before (README: Rotating the master key).", error.Message);
        Assert.Equal(200, await SecondStepAsync(after, name, codes[2]));
    }

    [Fact]
    public async Task Two_codes_sent_at_once_on_one_challenge_sign_in_once_and_use_up_only_that_one()
    {
        // Both were checked and used up before either redeemed the challenge: one signed in, the
        // other answered 401 with its code gone.
        var app = await services.AppAsync();
        var (name, _, _, codes) = await app.TwoFactorUserAsync("rr");
        var userId = await services.UserIdAsync(name);
        const int rounds = 4;
        for (var round = 0; round < rounds; round++)
        {
            var challenge = (await (await app.CallAsync("POST", "/api/login", new { username = name, password = Api.Password }, null, 200)).JsonAsync())["challenge"].Str();
            var statuses = await Task.WhenAll(new[] { codes[2 * round], codes[2 * round + 1] }.Select(code =>
                Task.Run(async () => (await app.CallAsync("POST", "/api/login/2fa", new { challenge, code }, null, null)).Status())));
            Assert.Equal(1, statuses.Count(status => status == 200));
        }
        Assert.Equal($"{10 - rounds}", await services.ScalarAsync($"SELECT COUNT(*) FROM recovery_codes WHERE user_id = {userId}"));
    }

    static async Task<int> SecondStepAsync(IAlbaHost app, string name, string code)
    {
        var challenge = (await (await app.CallAsync("POST", "/api/login", new { username = name, password = Api.Password }, null, 200)).JsonAsync())["challenge"].Str();
        return (await app.CallAsync("POST", "/api/login/2fa", new { challenge, code }, null, null)).Status();
    }
}
