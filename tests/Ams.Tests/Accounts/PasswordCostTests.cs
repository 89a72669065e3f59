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
        static int Hashing() => Directory.GetDirectories("/proc/self/task").Count(task => NameOf(task) == Passwords.ThreadName);
        static string NameOf(string task)
        {
            try { return File.ReadAllText(Path.Combine(task, "comm")).Trim(); }
            catch (IOException) { return ""; }   // the thread ended since the listing
        }
        // Each kind of work alone, watched from a thread of the test's own: a watcher on the pool
        // was itself held up on a busy machine and saw one of two overlapping hashes (CI).
        int Watched(Task work)
        {
            var seen = 0;
            while (!work.IsCompleted)
            {
                seen = Math.Max(seen, Hashing());
                Thread.Sleep(1);
            }
            return seen;
        }
        var hash = slow.HashAsync(Api.Password);
        var whileHashing = await Task.Factory.StartNew(() => Watched(hash), TaskCreationOptions.LongRunning);
        var verify = slow.VerifyAsync(stored, Api.Password);
        var whileVerifying = await Task.Factory.StartNew(() => Watched(verify), TaskCreationOptions.LongRunning);
        // At least one each (tests beside this one may be hashing too, on threads of the same name).
        Assert.True(whileHashing >= 1 && whileVerifying >= 1, $"hashing threads seen: {whileHashing} while hashing, {whileVerifying} while verifying");
        Assert.StartsWith(ProductionPrefix.Replace("t=2", "t=24"), await hash);
        Assert.True(await verify);
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
