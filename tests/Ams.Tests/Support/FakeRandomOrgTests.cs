using System.Net.Http.Json;

namespace Ams.Tests.Support;

public sealed class FakeRandomOrgTests
{
    static readonly HttpClient Http = new();

    static async Task<JsonNode> CallAsync(FakeRandomOrg fake, string method, JsonObject parameters, int id = 1)
    {
        var request = new JsonObject { ["jsonrpc"] = "2.0", ["method"] = method, ["params"] = parameters, ["id"] = id };
        using var response = await Http.PostAsJsonAsync(fake.Endpoint, request);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var node = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("2.0", (string?)node["jsonrpc"]);
        Assert.Equal(id, (int?)node["id"]);
        return node;
    }

    static JsonObject Blobs(string key = FakeRandomOrg.ValidKey, int n = 1, int size = 4096, string format = "base64") =>
        new() { ["apiKey"] = key, ["n"] = n, ["size"] = size, ["format"] = format };

    [Fact]
    public async Task Valid_generateBlobs_returns_bytes_and_counts_bits()
    {
        await using var fake = await FakeRandomOrg.StartAsync();
        Assert.Equal("127.0.0.1", fake.Endpoint.Host);
        Assert.Equal("/json-rpc/4/invoke", fake.Endpoint.AbsolutePath);

        var node = await CallAsync(fake, "generateBlobs", Blobs(n: 2, size: 4096), id: 42);
        var result = node["result"]!;
        var data = result["random"]!["data"]!.AsArray();
        Assert.Equal(2, data.Count);
        foreach (var item in data) Assert.Equal(512, Convert.FromBase64String((string)item!).Length);
        Assert.Equal(8192, (long)result["bitsUsed"]!);
        Assert.Equal(250_000 - 8192, (long)result["bitsLeft"]!);
        Assert.Equal(999, (long)result["requestsLeft"]!);
        Assert.Equal(0, (int)result["advisoryDelay"]!);
        Assert.NotNull((string?)result["random"]!["completionTime"]);

        Assert.Equal(8192, fake.BitsServed);
        Assert.Equal(250_000 - 8192, fake.BitsLeft);
        Assert.Equal(999, fake.RequestsLeft);
        Assert.Equal(1, fake.GenerateBlobsCalls);
        Assert.Equal(2, fake.Served.Count);
        Assert.Equal(Convert.FromBase64String((string)data[0]!), fake.Served[0]);
        Assert.Equal([FakeRandomOrg.ValidKey], fake.ApiKeysSeen);
        Assert.Equal(1, fake.MaxConcurrentRequests);

        var hex = await CallAsync(fake, "generateBlobs", Blobs(size: 64, format: "hex"));
        Assert.Equal(16, ((string)hex["result"]!["random"]!["data"]![0]!).Length);
    }

    [Fact]
    public async Task Unknown_key_gives_400()
    {
        await using var fake = await FakeRandomOrg.StartAsync();
        var node = await CallAsync(fake, "generateBlobs", Blobs(key: "nope"));
        Assert.Equal(400, (int)node["error"]!["code"]!);
        Assert.Equal("The API key you specified does not exist", (string?)node["error"]!["message"]);
        Assert.Null(node["result"]);
        Assert.Equal(0, fake.BitsServed);
        Assert.Equal(["nope"], fake.ApiKeysSeen);
    }

    [Fact]
    public async Task ErrorCode_switch_is_returned()
    {
        await using var fake = await FakeRandomOrg.StartAsync();
        fake.ErrorCode = 402;
        var node = await CallAsync(fake, "generateBlobs", Blobs());
        Assert.Equal(402, (int)node["error"]!["code"]!);
        Assert.Equal("The API key you specified has exceeded its daily request allowance", (string?)node["error"]!["message"]);
        Assert.Equal(0, fake.BitsServed);

        fake.ErrorCode = null;
        node = await CallAsync(fake, "generateBlobs", Blobs());
        Assert.NotNull(node["result"]);
    }

    [Fact]
    public async Task RequestsLeft_exhausted_gives_402_and_BitsLeft_exhausted_gives_403()
    {
        await using var fake = await FakeRandomOrg.StartAsync();
        fake.RequestsLeft = 1;
        Assert.NotNull((await CallAsync(fake, "generateBlobs", Blobs()))["result"]);
        Assert.Equal(0, fake.RequestsLeft);
        var node = await CallAsync(fake, "generateBlobs", Blobs());
        Assert.Equal(402, (int)node["error"]!["code"]!);

        fake.RequestsLeft = 10;
        fake.BitsLeft = 100;
        node = await CallAsync(fake, "generateBlobs", Blobs(size: 104));
        Assert.Equal(403, (int)node["error"]!["code"]!);
        Assert.Equal(4096, fake.BitsServed);
    }

    [Fact]
    public async Task Zeros_gives_all_zero_data()
    {
        await using var fake = await FakeRandomOrg.StartAsync();
        fake.Blobs = BlobKind.Zeros;
        var node = await CallAsync(fake, "generateBlobs", Blobs(n: 3, size: 1024));
        foreach (var item in node["result"]!["random"]!["data"]!.AsArray())
            Assert.All(Convert.FromBase64String((string)item!), b => Assert.Equal(0, b));

        fake.Blobs = BlobKind.Alternating;
        node = await CallAsync(fake, "generateBlobs", Blobs(size: 32));
        Assert.Equal("ABAB"u8.ToArray(), Convert.FromBase64String((string)node["result"]!["random"]!["data"]![0]!));
    }

    [Fact]
    public async Task GetUsage_returns_bitsLeft_without_consuming_requests()
    {
        await using var fake = await FakeRandomOrg.StartAsync();
        await CallAsync(fake, "generateBlobs", Blobs(size: 800));
        var node = await CallAsync(fake, "getUsage", new JsonObject { ["apiKey"] = FakeRandomOrg.ValidKey });
        var result = node["result"]!;
        Assert.Equal("running", (string?)result["status"]);
        Assert.Equal(250_000 - 800, (long)result["bitsLeft"]!);
        Assert.Equal(999, (long)result["requestsLeft"]!);
        Assert.Equal(800, (long)result["totalBits"]!);
        Assert.Equal(1, fake.GetUsageCalls);
        Assert.Equal(999, fake.RequestsLeft);
    }

    [Fact]
    public async Task Protocol_errors()
    {
        await using var fake = await FakeRandomOrg.StartAsync();
        Assert.Equal(-32602, (int)(await CallAsync(fake, "generateBlobs", Blobs(size: 7)))["error"]!["code"]!);
        Assert.Equal(-32602, (int)(await CallAsync(fake, "generateBlobs", Blobs(n: 101)))["error"]!["code"]!);
        Assert.Equal(-32602, (int)(await CallAsync(fake, "generateBlobs", Blobs(format: "octal")))["error"]!["code"]!);
        Assert.Equal(-32601, (int)(await CallAsync(fake, "generateIntegers", Blobs()))["error"]!["code"]!);

        using var response = await Http.PostAsync(fake.Endpoint, new StringContent("{not json", System.Text.Encoding.UTF8, "application/json"));
        var node = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(-32700, (int)node["error"]!["code"]!);
        Assert.Equal(0, fake.BitsServed);
    }

    [Fact]
    public async Task Hang_never_answers_until_the_client_gives_up()
    {
        await using var fake = await FakeRandomOrg.StartAsync();
        fake.Hang = true;
        using var client = new HttpClient { Timeout = TimeSpan.FromMilliseconds(300) };
        var request = new JsonObject { ["jsonrpc"] = "2.0", ["method"] = "generateBlobs", ["params"] = Blobs(), ["id"] = 1 };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.PostAsJsonAsync(fake.Endpoint, request));
        Assert.Equal(0, fake.BitsServed);
    }
}
