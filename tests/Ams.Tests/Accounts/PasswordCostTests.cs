using Ams.Infrastructure;
using Ams.Tests.Support;

namespace Ams.Tests.Accounts;

/// <summary>
/// Passwords:MemoryKiB and Passwords:Iterations: test hosts hash at libsodium's minimum cost,
/// a host without them at the production cost, and a stored hash verifies whatever the current
/// cost is because the PHC string carries its own parameters.
/// </summary>
public sealed class PasswordCostTests(Services services) : IClassFixture<Services>
{
    const string ProductionPrefix = "$argon2id$v=19$m=19456,t=2,p=1$";
    static readonly string CheapPrefix = $"$argon2id$v=19$m={Passwords.MinMemoryKiB},t={Passwords.MinIterations},p=1$";

    async Task<string> StoredHashAsync(string name) =>
        (await services.SqlAsync($"SELECT password_hash FROM users WHERE username = '{name}'")).Trim().Split('\n').Last().Trim();

    [Fact]
    public async Task A_cheap_hash_still_verifies_on_a_host_at_the_production_cost_which_upgrades_it()
    {
        var cheap = await services.AppAsync();
        var name = Api.UniqueName("cost");
        await cheap.RegisterAsync(name);
        Assert.StartsWith(CheapPrefix, await StoredHashAsync(name));

        await using var production = await services.StartAppAsync(settings: Services.ProductionPasswords);
        await production.Scenario(s =>
        {
            s.Post.Json(new { username = name, password = Api.Password + "!" }).ToUrl("/api/login");
            s.StatusCodeShouldBe(401);
        });
        Assert.StartsWith(CheapPrefix, await StoredHashAsync(name));
        await production.LoginAsync(name);
        Assert.StartsWith(ProductionPrefix, await StoredHashAsync(name));
        // And the other way round: the cheap host verifies the production hash by its own parameters.
        await cheap.LoginAsync(name);

        var fresh = Api.UniqueName("cost");
        await production.RegisterAsync(fresh);
        Assert.StartsWith(ProductionPrefix, await StoredHashAsync(fresh));
    }

    [Fact]
    public async Task Each_hash_carries_its_own_parameters()
    {
        var cheap = new Passwords(Passwords.MinMemoryKiB * 1024, Passwords.MinIterations);
        var production = new Passwords();
        var cheapHash = await cheap.HashAsync(Api.Password);
        var productionHash = await production.HashAsync(Api.Password);
        Assert.StartsWith(CheapPrefix, cheapHash);
        Assert.StartsWith(ProductionPrefix, productionHash);
        Assert.True(await production.VerifyAsync(cheapHash, Api.Password));
        Assert.False(await production.VerifyAsync(cheapHash, Api.Password + " "));
        Assert.True(await cheap.VerifyAsync(productionHash, Api.Password));
        Assert.False(await cheap.VerifyAsync(productionHash, Api.Password + " "));
        Assert.True(production.NeedsRehash(cheapHash));
        Assert.False(production.NeedsRehash(productionHash));
        Assert.False(cheap.NeedsRehash(cheapHash));
    }

    [Fact]
    public async Task Hashing_and_verifying_leave_the_callers_thread()
    {
        // The caller may be a socket event thread (inline socket completions): a hash at the production
        // cost (tens of ms) must not run on it, so each call hands back an unfinished task at once.
        var passwords = new Passwords();
        var stored = await passwords.HashAsync(Api.Password);
        Task<string>? hash = null;
        Task<bool>? verify = null, unknownAccount = null;
        var finishedOnReturn = new List<string>();
        var caller = new Thread(() =>
        {
            hash = passwords.HashAsync(Api.Password);
            if (hash.IsCompleted) finishedOnReturn.Add("HashAsync");
            verify = passwords.VerifyAsync(stored, Api.Password);
            if (verify.IsCompleted) finishedOnReturn.Add("VerifyAsync");
            unknownAccount = passwords.VerifyAsync(null, Api.Password);   // the decoy hash is made on first use
            if (unknownAccount.IsCompleted) finishedOnReturn.Add("VerifyAsync(null)");
        });
        caller.Start();
        caller.Join();
        Assert.Empty(finishedOnReturn);
        Assert.StartsWith(ProductionPrefix, await hash!);
        Assert.True(await verify!);
        Assert.False(await unknownAccount!);
    }

    [Fact]
    public async Task Hashes_run_on_threads_of_their_own_not_the_thread_pool()
    {
        // A hash on a pool thread holds it: as many hashes as cores took every pool thread, and a
        // healthy Redis's replies waited past their 1 s timeout behind a burst of sign-ins.
        var slow = new Passwords(Passwords.MemoryBytes, 24, maxConcurrent: 2, queueTimeout: TimeSpan.FromSeconds(30));
        var stored = await new Passwords().HashAsync(Api.Password);
        var running = new[] { slow.HashAsync(Api.Password), slow.VerifyAsync(stored, Api.Password).ContinueWith(t => t.Result.ToString()) };
        static int Hashing() => Directory.GetDirectories("/proc/self/task").Count(task => NameOf(task) == Passwords.ThreadName);
        static string NameOf(string task)
        {
            try { return File.ReadAllText(Path.Combine(task, "comm")).Trim(); }
            catch (IOException) { return ""; }   // the thread ended since the listing
        }
        var seen = 0;
        while (!running.All(t => t.IsCompleted))
        {
            seen = Math.Max(seen, Hashing());
            await Task.Delay(5);
        }
        // At least these two (tests beside this one may be hashing too, on threads of the same name).
        Assert.True(seen >= 2, $"{seen} hashing threads seen");
        Assert.StartsWith(ProductionPrefix.Replace("t=2", "t=24"), await running[0]);
        Assert.Equal("True", await running[1]);
    }

    [Theory]
    [InlineData("Passwords:MemoryKiB", "7")]
    [InlineData("Passwords:MemoryKiB", "0")]
    [InlineData("Passwords:MemoryKiB", "-19456")]
    [InlineData("Passwords:MemoryKiB", "1048577")]
    [InlineData("Passwords:MemoryKiB", "19 MiB")]
    [InlineData("Passwords:Iterations", "0")]
    [InlineData("Passwords:Iterations", "65")]
    [InlineData("Passwords:Iterations", "2.5")]
    public async Task A_nonsense_cost_stops_the_start(string key, string value)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => services.StartAppAsync(
            settings: new Dictionary<string, string?> { [key] = value }));
        Assert.Contains($"{key} is '{value}'", error.ToString());
    }
}
