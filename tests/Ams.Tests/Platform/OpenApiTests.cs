using System.Diagnostics;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;

namespace Ams.Tests.Platform;

/// <summary>
/// GET /openapi.json and docs/openapi.json: generated from the endpoints, in sync with what is
/// committed and served, covering every /api/ route, and valid OpenAPI 3.1 to a real reader.
/// <c>just openapi</c> rewrites the committed file (AMS_OPENAPI_WRITE=1).
/// </summary>
// Alone: FastEndpoints' configuration is static. In one CI run the generated document lacked the
// validators' rules (required, lengths) of one request; another class starting its app meanwhile is the likely cause.
[Collection(nameof(OpenApiTests))]
public sealed class OpenApiTests(Services services) : IClassFixture<Services>
{
    static readonly string CommittedPath = OpenApiGenerator.CommittedPath();

    IAlbaHost? app;
    async Task<IAlbaHost> AppAsync() => app ??= await services.StartAppAsync(services: OpenApiGenerator.AddDocument);

    [Fact]
    public async Task Committed_document_is_the_one_the_endpoints_generate()
    {
        var generated = await OpenApiGenerator.GenerateAsync((await AppAsync()).Services);
        if (Environment.GetEnvironmentVariable("AMS_OPENAPI_WRITE") == "1") await File.WriteAllTextAsync(CommittedPath, generated);
        var committed = (await File.ReadAllTextAsync(CommittedPath)).ReplaceLineEndings("\n");
        if (committed == generated) return;
        var (want, have) = (generated.Split('\n'), committed.Split('\n'));
        var line = Enumerable.Range(0, Math.Min(want.Length, have.Length)).FirstOrDefault(i => want[i] != have[i], Math.Min(want.Length, have.Length));
        Assert.Fail($"docs/openapi.json differs from what the endpoints generate (first at line {line + 1}:\n" +
                    $"  committed: {(line < have.Length ? have[line].Trim() : "<end>")}\n  generated: {(line < want.Length ? want[line].Trim() : "<end>")}).\n" +
                    "Run `just openapi` to rewrite it, check the diff, and commit it with the endpoint change.");
    }

    [Fact]
    public async Task Served_document_is_the_committed_file_without_authentication()
    {
        var result = await (await AppAsync()).Scenario(s =>
        {
            s.Get.Url("/openapi.json");
            s.StatusCodeShouldBe(200);
        });
        Assert.Equal("application/json", result.Context.Response.ContentType);
        var served = await result.ReadAsTextAsync();
        Assert.Equal(await File.ReadAllTextAsync(CommittedPath), served);
        Assert.StartsWith("3.1.", JsonNode.Parse(served)!["openapi"]!.GetValue<string>());
    }

    [Fact]
    public async Task Committed_document_is_valid_OpenAPI_3_1()
    {
        var (document, version, problems) = OpenApiGenerator.Read(await File.ReadAllTextAsync(CommittedPath));
        Assert.NotNull(document);
        Assert.Equal(OpenApiSpecVersion.OpenApi3_1, version);
        Assert.Empty(problems);
        Assert.Empty(document.Validate(ValidationRuleSet.GetDefaultRuleSet()) ?? []);
    }

    [Fact]
    public async Task Validator_rejects_a_broken_document()
    {
        // The validity test above proves something only if the reader finds faults: a dangling
        // schema reference and an operation without responses must be reported.
        var json = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath))!;
        json["paths"]!["/api/me"]!["get"]!.AsObject().Remove("responses");
        json["paths"]!["/api/register"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!["$ref"] = "#/components/schemas/Nowhere";
        var (document, _, problems) = OpenApiGenerator.Read(json.ToJsonString());
        var validation = document?.Validate(ValidationRuleSet.GetDefaultRuleSet()) ?? [];
        Assert.NotEmpty(problems.Concat(validation.Select(e => e.ToString())));
    }

    [Fact]
    public async Task Committed_document_passes_the_OpenAPI_3_1_JSON_Schema()
    {
        // A second, independent check (Kiota reads with Microsoft.OpenApi too): the official OpenAPI 3.1
        // schema, applied by ajv in @seriousme/openapi-schema-validator (tests/Ams.Tests/package.json).
        var root = Path.GetDirectoryName(Path.GetDirectoryName(CommittedPath))!;
        var cli = Path.Combine(root, "tests", "Ams.Tests", "node_modules", "@seriousme", "openapi-schema-validator", "bin", "validate-api-cli.js");
        Assert.Contains("\"valid\": true", await RunAsync(root, "node", cli, CommittedPath));

        // And it can fail: a document without its info object is refused.
        var broken = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath))!.AsObject();
        broken.Remove("info");
        var file = Path.Combine(Directory.CreateTempSubdirectory("ams-openapi-").FullName, "broken.json");
        await File.WriteAllTextAsync(file, broken.ToJsonString());
        var refused = await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(() => RunAsync(root, "node", cli, file));
        Assert.Contains("must have required property 'info'", refused.Message);
        Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
    }

    [Fact]
    public async Task Document_has_every_api_route_and_nothing_else()
    {
        var host = await AppAsync();
        var routes = host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.TrimStart('/').StartsWith("api/", StringComparison.Ordinal))
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Select(m => $"{m.ToLowerInvariant()} /{e.RoutePattern.RawText!.TrimStart('/')}"))
            .Order(StringComparer.Ordinal).ToList();
        Assert.True(routes.Count >= 35, $"only {routes.Count} /api/ routes in the endpoint registry");
        var paths = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath))!["paths"]!.AsObject();
        var documented = paths.SelectMany(p => p.Value!.AsObject().Select(o => $"{o.Key} {p.Key}")).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(routes, documented);
    }

    [Fact]
    public async Task Exactly_the_calls_documented_with_a_body_answer_one_in_another_media_type_with_415()
    {
        var doc = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath))!;
        var app = await services.AppAsync();
        var user = await app.MemberAsync("mt");
        using var client = app.Server.CreateClient();
        var refused = new List<string>();
        var answered = new List<string>();
        foreach (var (path, item) in doc["paths"]!.AsObject())
        foreach (var (method, op) in item!.AsObject())
        {
            // Every call lists 415, for a compressed body; the calls that take one, for its media type too.
            Assert.True(op!["responses"]!["415"] is not null, $"{method} {path} does not list 415");
            var documented = op["requestBody"] is not null;
            if (!documented && method is not ("post" or "put" or "patch" or "delete")) continue;
            var url = System.Text.RegularExpressions.Regex.Replace(path, @"\{[^}]+\}", "1");
            using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), url)
            {
                Content = new StringContent("username=alice&password=secret", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"),
            };
            request.Headers.Authorization = new("Bearer", user.Token);
            using var response = await client.SendAsync(request);
            var call = $"{method.ToUpperInvariant()} {path}";
            var text = await response.Content.ReadAsStringAsync();
            var body = text.Length > 0 ? JsonNode.Parse(text) : null;
            if (!documented)
            {
                // A call that takes no body ignores one: a form sent to it is not refused as a media type.
                if ((int)response.StatusCode == 415) refused.Add($"{call}: 415 but not documented");
                continue;
            }
            if ((int)response.StatusCode == 415 && response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                && body?["status"]?.GetValue<int>() == 415 && body["type"] is not null
                && body["detail"]?.GetValue<string>() is { } detail && detail.StartsWith("Send the request body as ", StringComparison.Ordinal))
                answered.Add(call);
            else refused.Add($"{call}: {(int)response.StatusCode} {response.Content.Headers.ContentType} {text}");
        }
        Assert.True(refused.Count == 0, "415 documented and answered differ:\n" + string.Join("\n", refused));
        Assert.Contains("POST /api/login", answered);
        Assert.Contains("POST /api/attachments", answered);
    }

    [Fact]
    public async Task Every_operation_has_a_summary_its_responses_and_problem_details_for_every_failure()
    {
        var doc = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath))!;
        var failures = new List<string>();
        var anonymous = new List<string>();
        foreach (var (path, item) in doc["paths"]!.AsObject())
        foreach (var (method, op) in item!.AsObject())
        {
            var call = $"{method.ToUpperInvariant()} {path}";
            if (string.IsNullOrWhiteSpace(op!["summary"]?.GetValue<string>())) failures.Add($"{call}: no summary");
            if (string.IsNullOrEmpty(op["operationId"]?.GetValue<string>())) failures.Add($"{call}: no operationId");
            var responses = op["responses"]!.AsObject();
            if (!responses.Any(r => r.Key.StartsWith('2'))) failures.Add($"{call}: no success response");
            if (!responses.ContainsKey("503")) failures.Add($"{call}: no 503");
            foreach (var (status, response) in responses.Where(r => r.Key[0] is '4' or '5'))
                if (response!["content"]?["application/problem+json"]?["schema"]?["$ref"]?.GetValue<string>() != "#/components/schemas/Problem")
                    failures.Add($"{call}: {status} is not application/problem+json Problem");
            // A 409 means something different on each call that answers one; the reason phrase alone says nothing.
            if (responses["409"]?["description"]?.GetValue<string>() is { } conflict && !conflict.StartsWith("Conflict: ", StringComparison.Ordinal))
                failures.Add($"{call}: its 409 does not say what conflicts");
            // A call that needs a session says so twice: the bearer requirement and its 401.
            if (op["security"] is null) anonymous.Add(call);
            else if (!responses.ContainsKey("401")) failures.Add($"{call}: needs a bearer token but has no 401");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(["GET /api/version", "POST /api/login", "POST /api/login/2fa", "POST /api/register"], anonymous.Order(StringComparer.Ordinal));
        // Spot checks of what the endpoints declare.
        Assert.NotNull(doc["paths"]!["/api/register"]!["post"]!["responses"]!["201"]);
        Assert.Null(doc["paths"]!["/api/register"]!["post"]!["security"]);
        Assert.NotNull(doc["paths"]!["/api/messages"]!["post"]!["responses"]!["422"]);
        Assert.Contains(doc["paths"]!["/api/messages"]!["post"]!["parameters"]!.AsArray(), p => p!["name"]!.GetValue<string>() == "Idempotency-Key");
        Assert.NotNull(doc["paths"]!["/api/sessions"]!["get"]!["responses"]!["403"]);
        // Every call that checks a password says its 503 may be "Server busy", and no other call does.
        string[] checkingPasswords = ["POST /api/2fa/disable", "POST /api/2fa/recovery-codes", "POST /api/2fa/setup", "POST /api/account/password",
            "POST /api/login", "POST /api/register", "POST /api/tokens"];
        Assert.Equal(checkingPasswords, doc["paths"]!.AsObject()
            .SelectMany(path => path.Value!.AsObject().Select(op => (Call: $"{op.Key.ToUpperInvariant()} {path.Key}",
                Busy: op.Value!["responses"]!["503"]!["description"]!.GetValue<string>().Contains("Server busy", StringComparison.Ordinal))))
            .Where(op => op.Busy).Select(op => op.Call).Order(StringComparer.Ordinal));   // a personal access token is refused
        Assert.NotNull(doc["paths"]!["/api/attachments"]!["post"]!["requestBody"]!["content"]!["multipart/form-data"]);
        Assert.Equal(2, doc["paths"]!["/api/login"]!["post"]!["responses"]!["200"]!["content"]!["application/json"]!["schema"]!["oneOf"]!.AsArray().Count);
    }

    /// <summary>
    /// Every bound the committed document gives a request field is its validator's own: a value at the
    /// bound passes that field's rules, one past it fails them. A limit changed on one side only fails here.
    /// </summary>
    [Fact]
    public async Task Documented_bounds_of_request_fields_are_the_ones_their_validators_enforce()
    {
        await AppAsync();   // a validator may resolve the app's services (Conversations:MaxMembers)
        var doc = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath))!;
        var types = typeof(Ams.Infrastructure.ApiDocs).Assembly.GetTypes().Where(t => t.IsPublic && t.IsClass)
            .GroupBy(OpenApiGenerator.SchemaName).ToDictionary(g => g.Key, g => g.First());
        var requests = doc["paths"]!.AsObject().SelectMany(p => p.Value!.AsObject())
            .Select(o => o.Value!["requestBody"]?["content"]?["application/json"]?["schema"]?["$ref"]?.GetValue<string>())
            .OfType<string>().Select(r => r.Split('/')[^1]).Distinct().Order(StringComparer.Ordinal).ToList();
        var failures = new List<string>();
        var bounds = 0;
        foreach (var name in requests)
        {
            var type = types[name];
            var validator = (FluentValidation.IValidator)Activator.CreateInstance(typeof(Ams.Infrastructure.ApiDocs).Assembly.GetTypes()
                .Single(t => t.BaseType is { IsGenericType: true } b && b.GetGenericTypeDefinition() == typeof(FastEndpoints.Validator<>) && b.GetGenericArguments()[0] == type))!;
            foreach (var (field, schema) in doc["components"]!["schemas"]![name]!["properties"]!.AsObject())
            {
                // A pattern is the tighter bound there (a username, a code): what a length allows, it may refuse.
                if (schema!["pattern"] is not null) continue;
                var property = type.GetProperty(char.ToUpperInvariant(field[0]) + field[1..])!;
                var rows = new List<(string Bound, object Value, bool Valid)>();
                if (schema["maxLength"]?.GetValue<int>() is { } max) rows.AddRange([("maxLength", Text(max), true), ("maxLength", Text(max + 1), false)]);
                if (schema["minLength"]?.GetValue<int>() is { } min) rows.AddRange([("minLength", Text(min), true), ("minLength", Text(min - 1), false)]);
                if (schema["maxItems"]?.GetValue<int>() is { } items) rows.AddRange([("maxItems", Ids(items), true), ("maxItems", Ids(items + 1), false)]);
                if (schema["items"]?["maxLength"]?.GetValue<int>() is { } each) rows.AddRange([("items.maxLength", new List<string> { Text(each) }, true), ("items.maxLength", new List<string> { Text(each + 1) }, false)]);
                foreach (var (bound, value, valid) in rows)
                {
                    var request = Activator.CreateInstance(type)!;
                    property.SetValue(request, value);
                    var errors = validator.Validate(new FluentValidation.ValidationContext<object>(request)).Errors
                        .Where(e => string.Equals(e.PropertyName.Split('[')[0], property.Name, StringComparison.OrdinalIgnoreCase)).ToList();
                    if (errors.Count == 0 != valid)
                        failures.Add($"{name}.{field} {bound} {schema[bound.Split('.')[^1]] ?? schema["items"]![bound.Split('.')[^1]]}: a value of {Size(value)} was {(valid ? $"refused ({errors[0].ErrorMessage})" : "accepted")}");
                    bounds++;
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(bounds >= 40, $"only {bounds} bounds checked");

        // Letters and digits that no rule refuses for what they are (not blank, not a common password).
        static string Text(int length) => string.Concat(Enumerable.Range(0, length).Select(i => "Zq7xW4mK"[i % 8]));
        static List<string> Ids(int count) => Enumerable.Range(1, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        static string Size(object value) => value is string text ? $"{text.Length} characters" : $"{((List<string>)value).Count} items";
    }

    /// <summary>
    /// A query parameter's documented pattern is what the endpoint takes: a value it matches is not
    /// refused, one it does not match is 400. (The event id's pattern could not say its 64-bit ceiling,
    /// so no sample here is over it; a contract check found the empty id, which is absent, outside it.)
    /// </summary>
    [Theory]
    [InlineData("/api/users", "prefix", new[] { "ab", "a.b-c_d", "AB", "", "a", "a b", "abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz0123456", "%C3%A9t%C3%A9" })]
    [InlineData("/api/events", "after", new[] { "", "0", "42", "00042", "9223372036854775807", "-1", "x", "1.5", "%201", "12345678901234567890" })]
    public async Task Documented_patterns_of_query_parameters_are_what_the_endpoints_take(string path, string name, string[] samples)
    {
        var host = await AppAsync();
        var alice = await host.MemberAsync("qp");
        var doc = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath))!;
        var pattern = doc["paths"]![path]!["get"]!["parameters"]!.AsArray()
            .Single(p => p!["name"]!.GetValue<string>() == name && p["in"]!.GetValue<string>() == "query")!["schema"]!["pattern"]!.GetValue<string>();
        var failures = new List<string>();
        foreach (var sample in samples)
        {
            var matches = System.Text.RegularExpressions.Regex.IsMatch(Uri.UnescapeDataString(sample), pattern, System.Text.RegularExpressions.RegexOptions.ECMAScript);
            // HEAD: the stream's answer ends after its headers.
            var status = (await host.Scenario(s =>
            {
                s.Head.Url($"{path}?{name}={sample}");
                s.WithBearerToken(alice.Token);
                s.IgnoreStatusCode();
            })).Context.Response.StatusCode;
            if (matches == (status == 400)) failures.Add($"{name}={sample}: the pattern {(matches ? "takes" : "refuses")} it, the endpoint answered {status}");
        }
        Assert.True(failures.Count == 0, $"{pattern}\n" + string.Join("\n", failures));
    }

    [Fact]
    public async Task Documented_values_of_answer_fields_are_the_lists_the_code_uses()
    {
        var schemas = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath))!["components"]!["schemas"]!;
        string[] Enum(string schema, string field) =>
            schemas[schema]!["properties"]![field]!["enum"]?.AsArray().Select(v => v!.GetValue<string>()).ToArray() ?? [];
        Assert.Equal(Ams.Infrastructure.SecurityEvents.Kinds, Enum("SecurityHistorySecurityEventView", "kind"));
        Assert.Equal(Ams.Infrastructure.Messaging.Conversations.Kinds, Enum("ConversationView", "kind"));
        Assert.Equal(Ams.Infrastructure.Crypto.EntropyModes.All, Enum("EntropyResponse", "mode"));
        Assert.Equal(Ams.Infrastructure.Crypto.EntropyModes.All, Enum("MessageView", "entropy"));
        // The list is every kind SecurityEvents names: a kind added without it would be missing here.
        var named = typeof(Ams.Infrastructure.SecurityEvents).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!);
        Assert.Equal(named.Order(StringComparer.Ordinal), Ams.Infrastructure.SecurityEvents.Kinds.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Kiota_generates_a_client_from_the_committed_document()
    {
        var root = Path.GetDirectoryName(Path.GetDirectoryName(CommittedPath))!;
        var output = Directory.CreateTempSubdirectory("ams-kiota-").FullName;
        try
        {
            await RunAsync(root, "dotnet", "tool", "restore");
            var log = await RunAsync(root, "dotnet", "tool", "run", "kiota", "generate", "--language", "CSharp", "--openapi", CommittedPath,
                "--output", output, "--class-name", "AmsClient", "--namespace-name", "Ams.Client", "--log-level", "Warning");
            Assert.Contains("Generation completed successfully", log);
            // Kiota's log: "warn: Category[id]" (or fail:, crit:) and the message on the next line.
            var lines = log.Split('\n');
            var warnings = lines.Zip(lines.Skip(1)).Where(p => p.First.StartsWith("warn:") || p.First.StartsWith("fail:") || p.First.StartsWith("crit:"))
                .Select(p => p.Second.Trim())
                // The document is served by the server it describes, so it names none (OpenAPI's default is "/").
                .Where(w => !w.Contains("servers entry (v3)") && !w.StartsWith("No server url found"))
                // POST /api/login answers a session or a two-factor challenge; the two shapes share no property to discriminate on.
                .Where(w => !w.Contains("The schema /api/login is a polymorphic type but does not define a discriminator"))
                .ToList();
            Assert.True(warnings.Count == 0, "Kiota warns:\n" + string.Join("\n", warnings));
            // Every problem response became the client's exception type, and every call a request builder.
            Assert.Contains(": ApiException", await File.ReadAllTextAsync(Path.Combine(output, "Models", "Problem.cs")));
            Assert.True(File.Exists(Path.Combine(output, "Api", "Conversations", "Item", "Messages", "MessagesRequestBuilder.cs")));
            Assert.True(File.Exists(Path.Combine(output, "Api", "Attachments", "AttachmentsRequestBuilder.cs")));
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    static async Task<string> RunAsync(string directory, string fileName, params string[] arguments)
    {
        var start = new ProcessStartInfo(fileName, arguments)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["KIOTA_OFFLINE_ENABLED"] = "true", ["KIOTA_TUTORIAL_ENABLED"] = "false", ["DOTNET_NOLOGO"] = "1" },
        };
        using var process = Process.Start(start)!;
        var (stdout, stderr) = (process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        var log = (await stdout + "\n" + await stderr).ReplaceLineEndings("\n");
        Assert.True(process.ExitCode == 0, $"{fileName} {string.Join(' ', arguments)} exited {process.ExitCode}:\n{log}");
        return log;
    }
}

[CollectionDefinition(nameof(OpenApiTests), DisableParallelization = true)]
public sealed class OpenApiCollection;
