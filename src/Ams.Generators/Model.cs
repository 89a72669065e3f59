namespace Ams.Generators;

/// <summary>What one class of the app contributes to <c>Slices</c>; plain strings so that equal models compare equal.</summary>
sealed record Found(string Name, string Display, bool IsEndpointOrValidator, bool IsJsonContext, bool HasServices, RequestDto? Request);

/// <summary>A request DTO as FastEndpoints' binder needs it: how to create it and reach each settable property.</summary>
sealed record RequestDto(string Name, string Display, bool CanCreate, EquatableArray<DtoProperty> Properties, EquatableArray<ValueParser> Parsers);

/// <param name="Required">set to <c>default!</c> in the factory so that <c>new T()</c> compiles</param>
sealed record DtoProperty(string Name, string TypeDisplay, bool HasSetter, bool Required);

/// <param name="WithCulture">the type is <c>IParsable&lt;T&gt;</c>; otherwise it has <c>TryParse(string, out T)</c></param>
sealed record ValueParser(string TypeDisplay, bool WithCulture);
