using Ams.Infrastructure;
using FastEndpoints.Swagger;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.DependencyInjection;
using System.ComponentModel.DataAnnotations;
using Ms = Microsoft.OpenApi;
using Namotion.Reflection;
using NJsonSchema;
using NJsonSchema.Generation;
using NSwag;
using NSwag.Generation;
using NSwag.Generation.AspNetCore;
using NSwag.Generation.Processors;
using NSwag.Generation.Processors.Contexts;

namespace Ams.Tests.Platform;

/// <summary>
/// Generates <c>docs/openapi.json</c> from the running app's endpoints: NSwag (through FastEndpoints'
/// Swagger support, JIT only, so never in the AOT binary) writes OpenAPI 3.0 from each endpoint's
/// metadata (<see cref="ApiDocs"/>), the document keeps the <c>/api/</c> calls only, and
/// Microsoft.OpenApi reads it and writes it as OpenAPI 3.1, paths and schemas sorted so the file
/// changes only when the API does.
/// </summary>
static class OpenApiGenerator
{
    const string Name = "v1";

    /// <summary>The services a test host needs for <see cref="GenerateAsync"/>.</summary>
    public static void AddDocument(IServiceCollection services) => services.SwaggerDocument(o =>
    {
        o.EnableJWTBearerAuth = false;
        o.AutoTagPathSegmentIndex = 2;   // /api/{tag}/…
        o.DocumentSettings = s =>
        {
            s.DocumentName = Name;
            s.Title = "AMS";
            s.Version = "1";
            s.Description = "The JSON API of AMS, a self-hosted messaging server. docs/api.md in the repository is the contract in prose. " +
                            "Every error is an RFC 9457 problem (application/problem+json).";
            s.AddAuth("bearer", new OpenApiSecurityScheme
            {
                Type = OpenApiSecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "A session token from POST /api/login (or /api/login/2fa), or a personal access token from POST /api/tokens.",
            });
            s.MarkNonNullablePropsAsRequired();
            // Unknown request fields are ignored, and answers may gain fields (api.md): no object is closed.
            s.SchemaSettings.AlwaysAllowAdditionalObjectProperties = true;
            s.SchemaSettings.SchemaNameGenerator = new SchemaNames();
            s.SchemaSettings.SchemaProcessors.Add(new ProblemSchema());
            s.SchemaSettings.SchemaProcessors.Add(new PropertyBounds());
            s.SchemaSettings.SchemaProcessors.Add(new OptionalSendBody());
            // First, so that no other processor sees a browser route: FastEndpoints would strip the form
            // twin's route parameters (/c/{conversationId}/send) from the request schema both routes share.
            s.OperationProcessors.Insert(0, new ApiRoutesOnly());
            s.OperationProcessors.Add(new Operations());
        };
    });

    /// <summary>The document as the committed file holds it: OpenAPI 3.1 JSON, LF line ends, a final newline.</summary>
    public static async Task<string> GenerateAsync(IServiceProvider services)
    {
        var nswag = await services.GetRequiredService<IOpenApiDocumentGenerator>().GenerateAsync(Name);
        var json = Trim(JsonNode.Parse(nswag.ToJson())!.AsObject());
        var read = Ms.OpenApiDocument.Parse(json.ToJsonString(), "json");
        if (read.Diagnostic?.Errors.Count > 0 || read.Document is null)
            throw new InvalidOperationException("Microsoft.OpenApi cannot read NSwag's document: " + string.Join("; ", read.Diagnostic!.Errors));
        using var text = new StringWriter { NewLine = "\n" };
        read.Document.SerializeAsV31(new Ms.OpenApiJsonWriter(text));
        return text.ToString().ReplaceLineEndings("\n").TrimEnd() + "\n";
    }

    /// <summary>The /api/ paths only, sorted; the schemas they reach, sorted; Retry-After on 429 and 503; no generator noise.</summary>
    static JsonObject Trim(JsonObject doc)
    {
        doc.Remove("x-generator");
        var paths = doc["paths"]!.AsObject();
        doc["paths"] = Sorted(paths.Where(p => p.Key.StartsWith("/api/", StringComparison.Ordinal)));
        var schemas = doc["components"]!["schemas"]!.AsObject();
        var reached = Reached(schemas, doc["paths"]);
        doc["components"]!["schemas"] = Sorted(schemas.Where(s => reached.Contains(s.Key)));
        schemas = doc["components"]!["schemas"]!.AsObject();
        var operations = doc["paths"]!.AsObject().SelectMany(p => p.Value!.AsObject()).Select(o => o.Value!.AsObject()).ToList();
        // A nullable reference: NSwag says "nullable" beside a one-way oneOf, which 3.1 has no word for (and drops).
        NullableRefs(doc);
        // Every property of an answer is written, null or not (no JSON ignore conditions): required in
        // what only answers use; a request's nullable fields stay optional.
        var inRequests = Reached(schemas, new JsonArray(operations.Select(o => o["requestBody"]?.DeepClone()).ToArray()));
        foreach (var name in Reached(schemas, new JsonArray(operations.Select(o => o["responses"]?.DeepClone()).ToArray()))
                     .Except(inRequests).Except(["Problem", "ProblemError"]))
            if (schemas[name]!["properties"] is JsonObject properties)
                schemas[name]!["required"] = new JsonArray(properties.Select(p => (JsonNode)p.Key).ToArray());
        // NSwag leaves some statuses (206) without a description, which OpenAPI requires.
        foreach (var (status, response) in operations.SelectMany(o => o["responses"]!.AsObject()))
            if (response!["description"]?.GetValue<string>() is null or "")
                response["description"] = Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(int.Parse(status, System.Globalization.CultureInfo.InvariantCulture));
        // Every 429 and 503 AMS writes says how long to wait (Problem.RetryAfter, ProblemResponses.Customize).
        foreach (var response in operations.SelectMany(o => o["responses"]!.AsObject()).Where(r => r.Key is "429" or "503").Select(r => r.Value!.AsObject()))
            response["headers"] = new JsonObject
            {
                ["Retry-After"] = new JsonObject
                {
                    ["description"] = "Seconds to wait before trying again.",
                    ["schema"] = new JsonObject { ["type"] = "integer" },
                },
            };
        foreach (var body in operations.Select(o => o["requestBody"]).OfType<JsonObject>())
        {
            body.Remove("x-name");
            body.Remove("x-position");
            if (body["description"]?.GetValue<string>() == "") body.Remove("description");
        }
        return doc;
    }

    const string SchemaRef = "#/components/schemas/";

    static HashSet<string> Reached(JsonObject schemas, JsonNode? from)
    {
        var reached = new HashSet<string>();
        var pending = new Stack<JsonNode>(from is null ? [] : [from]);
        while (pending.TryPop(out var node))
            foreach (var name in Refs(node).Where(reached.Add))
                pending.Push(schemas[name]!);
        return reached;
    }

    static void NullableRefs(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                if (o["nullable"]?.GetValue<bool>() == true && o["oneOf"] is JsonArray oneOf)
                {
                    oneOf.Add(new JsonObject { ["type"] = "null" });
                    o.Remove("nullable");
                }
                foreach (var (_, value) in o.ToList()) NullableRefs(value);
                break;
            case JsonArray a:
                foreach (var item in a.ToList()) NullableRefs(item);
                break;
        }
    }

    static IEnumerable<string> Refs(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => p.Key == "$ref" && p.Value!.GetValue<string>().StartsWith(SchemaRef, StringComparison.Ordinal)
            ? [p.Value!.GetValue<string>()[SchemaRef.Length..]]
            : Refs(p.Value)),
        JsonArray a => a.SelectMany(Refs),
        _ => [],
    };

    static JsonObject Sorted(IEnumerable<KeyValuePair<string, JsonNode?>> items) =>
        new(items.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())).ToList());

    /// <summary>A slice's types by slice and name (RegisterRequest, TwoFactorLoginRequest); shared views by their own name.</summary>
    sealed class SchemaNames : ISchemaNameGenerator
    {
        public string Generate(Type type) => SchemaName(type);
    }

    /// <summary>The name of <paramref name="type"/>'s schema in the document.</summary>
    public static string SchemaName(Type type)
    {
        {
            if (type == typeof(FastEndpoints.ProblemDetails)) return "Problem";
            if (type == typeof(FastEndpoints.ProblemDetails.Error)) return "ProblemError";
            const string features = "Ams.Features.";
            return type.Namespace?.StartsWith(features, StringComparison.Ordinal) == true
                ? type.Namespace[features.Length..].Replace(".", "") + type.Name
                : type.Name;
        }
    }

    /// <summary>
    /// A send's body is a non-null string in C# (absent, it is ""), but a message with attachments may
    /// leave it out (api.md "Attachments"): required in the document, a generated client always sent it.
    /// </summary>
    sealed class OptionalSendBody : ISchemaProcessor
    {
        public void Process(SchemaProcessorContext context)
        {
            if (context.ContextualType.Type != typeof(Ams.Features.SendMessage.Request)) return;
            context.Schema.RequiredProperties.Remove("body");
            context.Schema.Properties["body"].Description = "The text; may be left out or empty when attachments are given.";
        }
    }

    /// <summary>The problem shape as AMS writes it: FastEndpoints' class, without its placeholder defaults (AMS sets its own type URIs).</summary>
    sealed class ProblemSchema : ISchemaProcessor
    {
        public void Process(SchemaProcessorContext context)
        {
            var schema = context.Schema;
            if (context.ContextualType.Type == typeof(FastEndpoints.ProblemDetails))
            {
                schema.Description = "RFC 9457 problem details. Validation failures list the fields in errors; other problems have none.";
                // Every problem AMS writes has these (ProblemResponses.Customize adds traceId and instance); errors only validation failures.
                schema.RequiredProperties.Clear();
                foreach (var name in new[] { "type", "title", "status", "instance", "traceId" }) schema.RequiredProperties.Add(name);
            }
            else if (context.ContextualType.Type == typeof(FastEndpoints.ProblemDetails.Error))
            {
                schema.Description = "One validation failure: name is the camelCase field.";
                schema.RequiredProperties.Clear();
                foreach (var name in new[] { "name", "reason" }) schema.RequiredProperties.Add(name);
            }
            else return;
            foreach (var property in schema.Properties.Values) property.Default = null;
        }
    }

    /// <summary>
    /// Bounds as the validators enforce them. FastEndpoints writes the FluentValidation rules it can
    /// read after NJsonSchema's own reading of the attributes, so a <c>NotEmpty</c> rule would leave
    /// a <see cref="StringLengthAttribute"/>'s minimum at 1: the attribute is applied again here.
    /// It writes a <c>RuleForEach</c> string rule on the list itself, where JSON Schema ignores it: it
    /// moves to the items. And what NJsonSchema does not read at all: <see cref="ApiValuesAttribute"/>
    /// (the values its list holds, as the enum) and <see cref="ApiMaxItemsAttribute"/>.
    /// </summary>
    sealed class PropertyBounds : ISchemaProcessor
    {
        public void Process(SchemaProcessorContext context)
        {
            foreach (var property in context.ContextualType.Type.GetProperties())
            {
                // Not every schema of the type lists its properties (a reference to it does not).
                if (!context.Schema.ActualSchema.Properties.TryGetValue(char.ToLowerInvariant(property.Name[0]) + property.Name[1..], out var declared)) continue;
                JsonSchema schema = declared;
                if (declared.Type.HasFlag(JsonObjectType.Array) && declared.Item is { } item)
                {
                    (item.MinLength, item.MaxLength) = (declared.MinLength, declared.MaxLength);
                    (declared.MinLength, declared.MaxLength) = (null, null);
                    schema = item;
                }
                if (property.GetCustomAttributes(typeof(StringLengthAttribute), inherit: false) is [StringLengthAttribute length])
                    (schema.MinLength, schema.MaxLength) = (Math.Max(schema.MinLength ?? 0, length.MinimumLength), length.MaximumLength);
                if (schema.MinLength == 0) schema.MinLength = null;   // says nothing
                if (property.GetCustomAttributes(typeof(ApiValuesAttribute), inherit: false) is [ApiValuesAttribute values])
                {
                    var list = (IEnumerable<string>)(values.Holder.GetField(values.Member)?.GetValue(null) ?? values.Holder.GetProperty(values.Member)!.GetValue(null)!);
                    schema.Enumeration.Clear();
                    foreach (var value in list) schema.Enumeration.Add(value);
                }
                if (property.GetCustomAttributes(typeof(ApiMaxItemsAttribute), inherit: false) is [ApiMaxItemsAttribute items])
                    declared.MaxItems = items.Max;
            }
        }
    }

    /// <summary>Browser routes (pages, fragments, form posts) are not part of the API document.</summary>
    sealed class ApiRoutesOnly : IOperationProcessor
    {
        public bool Process(OperationProcessorContext context) =>
            context.OperationDescription.Path.StartsWith("/api/", StringComparison.Ordinal);
    }

    /// <summary>
    /// What NSwag cannot see by itself: the operation id (from the endpoint's slice and class), a bearer
    /// requirement on an anonymous endpoint's API route (<see cref="ApiSessionRequired"/>), the
    /// query and header parameters a handler reads itself (<see cref="ApiParameter"/>), a file upload
    /// (<see cref="ApiFileUpload"/>), one status with two possible bodies (oneOf), and bytes as bytes
    /// (a <see cref="Stream"/> body).
    /// </summary>
    sealed class Operations : IOperationProcessor
    {
        public bool Process(OperationProcessorContext context)
        {
            var endpoint = context.GetEndpointDefinition()!;
            var metadata = ((AspNetCoreOperationProcessorContext)context).ApiDescription.ActionDescriptor.EndpointMetadata;
            var operation = context.OperationDescription.Operation;
            var slice = endpoint.EndpointType.Namespace!.Split('.')[^1];
            var id = slice + endpoint.EndpointType.Name.Replace("Endpoint", "");
            operation.OperationId = char.ToLowerInvariant(id[0]) + id[1..];

            foreach (var p in metadata.OfType<ApiParameter>())
                operation.Parameters.Add(new OpenApiParameter
                {
                    Name = p.Name,
                    Kind = p.In == "query" ? OpenApiParameterKind.Query : OpenApiParameterKind.Header,
                    Description = p.Description,
                    IsRequired = p.Required,
                    Schema = new JsonSchema
                    {
                        Type = p.Type == "integer" ? JsonObjectType.Integer : JsonObjectType.String, Pattern = p.Pattern,
                        Minimum = p.Bounds?.Minimum, Maximum = p.Bounds?.Maximum, Default = p.Bounds?.Default,
                    },
                });

            foreach (var header in metadata.OfType<ApiResponseHeader>())
                operation.Responses[header.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)].Headers[header.Name] =
                    new OpenApiHeader { Description = header.Description, Schema = new JsonSchema { Type = JsonObjectType.String } };

            if (metadata.OfType<ApiSessionRequired>().Any() && operation.Security is not { Count: > 0 })
                (operation.Security ??= []).Add(new OpenApiSecurityRequirement { ["bearer"] = [] });

            if (metadata.OfType<ApiFileUpload>().SingleOrDefault() is { } upload)
            {
                var form = new JsonSchema { Type = JsonObjectType.Object };
                form.Properties[upload.Part] = new JsonSchemaProperty { Type = JsonObjectType.String, Format = "binary", Description = upload.Description };
                form.RequiredProperties.Add(upload.Part);
                operation.RequestBody = new OpenApiRequestBody { IsRequired = true };
                operation.RequestBody.Content["multipart/form-data"] = new OpenApiMediaType { Schema = form };
            }

            // A body in another media type (curl's -d without a Content-Type sends a form) is refused
            // before the handler, like one over 64 KiB: the same problem, for every call that takes a body.
            if (operation.RequestBody is not null && operation.Responses.TryGetValue("413", out var tooLarge))
            {
                var unsupported = new OpenApiResponse { Description = "Unsupported Media Type" };
                foreach (var (type, media) in tooLarge.Content) unsupported.Content[type] = new OpenApiMediaType { Schema = media.Schema };
                var ordered = operation.Responses.Append(new("415", unsupported)).OrderBy(r => r.Key, StringComparer.Ordinal).ToList();
                operation.Responses.Clear();
                foreach (var (status, response) in ordered) operation.Responses[status] = response;
            }

            foreach (var status in metadata.OfType<IProducesResponseTypeMetadata>().GroupBy(m => m.StatusCode))
            {
                var types = status.Select(m => m.Type).OfType<Type>().Distinct().ToList();
                if (types.Count < 2) continue;
                var oneOf = new JsonSchema();
                foreach (var type in types)
                    oneOf.OneOf.Add(context.SchemaGenerator.GenerateWithReference<JsonSchema>(type.ToContextualType(), context.SchemaResolver));
                var response = operation.Responses[status.Key.ToString(System.Globalization.CultureInfo.InvariantCulture)];
                response.Content["application/json"] = new OpenApiMediaType { Schema = oneOf };
            }

            foreach (var bytes in metadata.OfType<IProducesResponseTypeMetadata>().Where(m => m.Type == typeof(Stream)))
            {
                var content = operation.Responses[bytes.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)].Content;
                // Bytes whose Content-Type the answer decides (a header the call documents) are any type: */*
                // (ASP.NET's metadata refuses a wildcard, so the endpoint names octet-stream).
                var anyType = metadata.OfType<ApiResponseHeader>().Any(h => h.Status == bytes.StatusCode && h.Name == "Content-Type");
                if (anyType) content.Clear();
                foreach (var contentType in anyType ? ["*/*"] : bytes.ContentTypes)
                    content[contentType] = new OpenApiMediaType { Schema = new JsonSchema { Type = JsonObjectType.String, Format = "binary" } };
            }
            return true;
        }
    }

    /// <summary>The repository's docs/openapi.json.</summary>
    public static string CommittedPath() => Path.Combine(Ams.Testing.AppProcess.RepositoryRoot(), "docs", "openapi.json");

    /// <summary>Microsoft.OpenApi's reading of a document: its version, and every reader error and warning.</summary>
    public static (Ms.OpenApiDocument? Document, Ms.OpenApiSpecVersion Version, List<string> Problems) Read(string json)
    {
        var read = Ms.OpenApiDocument.Parse(json, "json", new Ms.Reader.OpenApiReaderSettings());
        var problems = read.Diagnostic!.Errors.Select(e => $"error: {e}").Concat(read.Diagnostic.Warnings.Select(w => $"warning: {w}")).ToList();
        return (read.Document, read.Diagnostic.SpecificationVersion, problems);
    }
}
