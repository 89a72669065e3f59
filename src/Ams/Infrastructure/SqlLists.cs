using System.Globalization;
using System.Text.Json;

namespace Ams.Infrastructure;

/// <summary>
/// Lists for <c>IN</c> clauses, passed as one JSON parameter and unpacked with JSON_TABLE.
/// Dapper's own list expansion reaches reflection-only code that Native AOT cannot keep.
/// </summary>
public static class SqlLists
{
    public const string IdsTable = "JSON_TABLE(@ids, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) AS ids";
    public const string NamesTable = "JSON_TABLE(@names, '$[*]' COLUMNS (name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PATH '$')) AS names";

    public static string Ids(IEnumerable<long> ids) => "[" + string.Join(",", ids.Select(id => id.ToString(CultureInfo.InvariantCulture))) + "]";

    public static string Names(IEnumerable<string> names) => JsonSerializer.Serialize(names.ToArray(), AppJsonContext.Default.StringArray);
}
