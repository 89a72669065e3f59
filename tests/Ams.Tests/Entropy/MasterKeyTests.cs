using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ams.Tests.Entropy;

/// <summary>Parsing <c>Crypto__MasterKeys</c> and the development key file, without a server.</summary>
public sealed class MasterKeyTests
{
    static readonly string KeyA = Convert.ToBase64String(new byte[32]);
    static readonly string KeyB = Convert.ToBase64String(Enumerable.Repeat((byte)7, 32).ToArray());

    sealed class Environment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;
        public string ApplicationName { get; set; } = "Ams";
        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;
        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }

    static IConfiguration Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, v.Value))).Build();

    [Fact]
    public void Spaces_and_empty_entries_around_the_keys_are_ignored_and_the_first_key_is_primary()
    {
        var keys = MasterKeys.Parse($" k2:{KeyB} ,, k1:{KeyA} ,");
        Assert.Equal("k2", keys.PrimaryId);
        Assert.Equal(["k2", "k1"], keys.Ids);
        Assert.True(keys.TryGet("k1", out var k1));
        Assert.Equal(new byte[32], k1);
    }

    [Theory]
    [InlineData("k1:{A},nocolon", "Crypto:MasterKeys entry 2: expected 'id:base64key'")]
    [InlineData("k1:{A},:{B}", "Crypto:MasterKeys entry 2: expected 'id:base64key'")]
    [InlineData("k1:{A},k1:{B}", "Crypto:MasterKeys lists the id 'k1' twice.")]
    [InlineData(" , ,", "Crypto:MasterKeys is empty.")]
    [InlineData("k1:{A},k2:AAAA", "Crypto:MasterKeys key 'k2' must be 32 bytes (base64 of 32 random bytes), not 3.")]
    public void Each_bad_setting_is_refused_with_a_message_that_names_the_entry(string setting, string message)
    {
        var error = Assert.Throws<ConfigurationException>(() => MasterKeys.Parse(setting.Replace("{A}", KeyA).Replace("{B}", KeyB)));
        Assert.StartsWith(message, error.Message);
        Assert.DoesNotContain(KeyB, error.Message);
    }

    [Fact]
    public void Production_without_keys_says_how_to_make_one()
    {
        var error = Assert.Throws<ConfigurationException>(() =>
            MasterKeys.Load(Config(), new Environment("Production"), new CapturedLogs().CreateLogger("t")));
        Assert.Contains("Set Crypto__MasterKeys to 'id:base64key'", error.Message);
        Assert.Contains("AMS will not store data without a master key.", error.Message);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void The_development_key_file_is_readable_by_its_owner_only()
    {
        var file = Path.Combine(Path.GetTempPath(), $"ams-dev-key-{Guid.NewGuid():N}", "dev-master-keys");
        try
        {
            var keys = MasterKeys.Load(Config(("Crypto:DevKeyFile", file)), new Environment("Development"), new CapturedLogs().CreateLogger("t"));
            Assert.Equal("dev", keys.PrimaryId);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
        }
    }

    [Fact]
    public void The_development_key_file_lives_in_the_data_folder_by_default()
    {
        var logs = new CapturedLogs();
        MasterKeys.Load(Config(), new Environment("Development"), logs.CreateLogger("t"));
        var expected = Path.GetFullPath(Path.Combine(".data", "dev-master-keys"));
        Assert.True(File.Exists(expected));
        Assert.Contains($"DEVELOPMENT MASTER KEY in {expected}.", logs.All);
    }
}
