using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;

namespace Ams.Infrastructure;

/// <summary>
/// HTML that is safe by construction: in <c>Html.Of($"...")</c> every interpolated value is
/// HTML-encoded unless it is itself <see cref="Html"/>. User-written text cannot reach a page
/// unencoded without someone writing <see cref="Raw"/>.
/// </summary>
public readonly struct Html(string value)
{
    public string Value { get; } = value;
    public static Html Raw(string trustedMarkup) => new(trustedMarkup);
    public static Html Of(Builder markup) => new(markup.ToStringAndClear());
    public static Html Join(IEnumerable<Html> parts) => new(string.Concat(parts.Select(p => p.Value)));
    public static readonly Html Empty = new("");
    public override string ToString() => Value;

    [InterpolatedStringHandler]
    public ref struct Builder(int literalLength, int formattedCount)
    {
        readonly StringBuilder text = new(literalLength + formattedCount * 16);

        public readonly void AppendLiteral(string markup) => text.Append(markup);
        public readonly void AppendFormatted(Html markup) => text.Append(markup.Value);
        public readonly void AppendFormatted(string? value) => text.Append(HtmlEncoder.Default.Encode(value ?? ""));
        public readonly void AppendFormatted<T>(T value) where T : IFormattable =>
            text.Append(HtmlEncoder.Default.Encode(value.ToString(null, System.Globalization.CultureInfo.InvariantCulture)));
        public readonly string ToStringAndClear() => text.ToString();
    }
}
