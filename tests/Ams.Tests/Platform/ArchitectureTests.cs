using System.Text.RegularExpressions;

namespace Ams.Tests.Platform;

/// <summary>Rules of the source a compiler does not check: shared plumbing is called by slices, never the other way round; every query has a timeout.</summary>
public sealed partial class ArchitectureTests
{
    static string SourceRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ams.sln"))) return Path.Combine(dir.FullName, "src", "Ams");
        throw new InvalidOperationException("Ams.sln not found above the test binaries");
    }

    // A slice's namespace, written out or relative (Features.X inside namespace Ams); not a member
    // access such as ASP.NET's HttpContext.Features.
    [GeneratedRegex(@"(?<![\w.])Features\.|Ams\.Features")]
    private static partial Regex FeaturesReference();

    [Fact]
    public void Infrastructure_names_no_slice()
    {
        var files = Directory.GetFiles(Path.Combine(SourceRoot(), "Infrastructure"), "*.cs", SearchOption.AllDirectories);
        Assert.NotEmpty(files);
        var offenders = files.SelectMany(f => File.ReadLines(f).Select((line, i) => (f, line, i)))
            .Where(x => FeaturesReference().IsMatch(x.line))
            .Select(x => $"{Path.GetFileName(x.f)}:{x.i + 1}: {x.line.Trim()}").ToList();
        Assert.Empty(offenders);
    }

    [Fact]
    public void Infrastructure_knows_no_event_kind()
    {
        // Kinds are the slices' business: the log, hub and streams carry a kind as an opaque name.
        var messaging = Directory.GetFiles(Path.Combine(SourceRoot(), "Infrastructure", "Messaging"), "*.cs");
        Assert.NotEmpty(messaging);
        foreach (var file in messaging)
            Assert.DoesNotMatch(@"EventKinds|IEventFragment|""read""|[Kk]ind\s*==\s*""", File.ReadAllText(file));
    }

    // A Dapper call: the Query/Execute family on a connection (every one in AMS is named so).
    [GeneratedRegex(@"(?<![\w.])connection\s*\.\s*(Query|QuerySingle|QuerySingleOrDefault|QueryFirst|QueryFirstOrDefault|Execute|ExecuteScalar)(Async)?(<[^()]*?>)?\(")]
    private static partial Regex DapperCall();

    [Fact]
    public void Every_Dapper_query_but_the_migrations_names_its_timeout()
    {
        // Dapper.AOT gives a call that names no commandTimeout a timeout of 0, which is none: a
        // query on a hung MariaDB would wait for as long as it hangs.
        var offenders = new List<string>();
        var calls = 0;
        foreach (var file in Directory.GetFiles(SourceRoot(), "*.cs", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(file) == "Migrations.cs" || file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")) continue;
            var text = File.ReadAllText(file);
            foreach (Match call in DapperCall().Matches(text))
            {
                var open = call.Index + call.Length;
                var arguments = text[open..CloseOf(text, open)];
                calls++;
                if (!arguments.Contains("commandTimeout:", StringComparison.Ordinal))
                    offenders.Add($"{Path.GetFileName(file)}:{text[..call.Index].Count(c => c == '\n') + 1}");
            }
        }
        Assert.True(calls > 50, $"found only {calls} Dapper calls: the search is broken");
        Assert.Empty(offenders);
    }

    [Fact]
    public void Every_transaction_begins_within_the_command_timeout()
    {
        // MySqlConnector's own BeginTransaction reads its replies with no timeout: on a hung MariaDB
        // it waits for as long as the hang lasts. Infrastructure/Transaction.cs begins one by a command.
        var files = Directory.GetFiles(SourceRoot(), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")).ToList();
        Assert.Contains(files, f => File.ReadAllText(f).Contains("Transaction.BeginAsync(", StringComparison.Ordinal));
        var offenders = files.Where(f => Regex.IsMatch(File.ReadAllText(f), @"\.BeginTransaction(Async)?\(")).Select(Path.GetFileName).ToList();
        Assert.Empty(offenders);
    }

    /// <summary>The index of the <paramref name="close"/> that ends what opened before <paramref name="i"/>, past strings and comments.</summary>
    static int CloseOf(string s, int i, char close = ')')
    {
        for (var depth = 0; ; i++)
        {
            switch (s[i])
            {
                case '(' or '[' or '{': depth++; break;
                case ')' or ']' or '}' when depth > 0: depth--; break;
                case ')' or ']' or '}' when s[i] == close: return i;
                case '/' when s[i + 1] == '/': i = s.IndexOf('\n', i); break;
                case '\'': i = s.IndexOf('\'', i + (s[i + 1] == '\\' ? 2 : 1)); break;
                case '"' or '$' or '@' when s.IndexOf('"', i) is var quote && s[i..quote].All(c => c is '$' or '@'):
                    i = EndOfString(s, i, quote) - 1;
                    break;
            }
        }
    }

    static int EndOfString(string s, int start, int quote)
    {
        var quotes = 0;
        while (s[quote + quotes] == '"') quotes++;
        if (quotes >= 3) return s.IndexOf(new string('"', quotes), quote + quotes) + quotes;   // raw
        var (verbatim, interpolated) = (s[start..quote].Contains('@'), s[start..quote].Contains('$'));
        for (var i = quote + 1; ; i++)
        {
            if (s[i] == '\\' && !verbatim) i++;
            else if (s[i] == '"' && verbatim && s[i + 1] == '"') i++;
            else if (s[i] == '"') return i + 1;
            else if (interpolated && s[i] == '{' && s[i + 1] == '{') i++;
            else if (interpolated && s[i] == '{') i = CloseOf(s, i + 1, '}');
        }
    }
}
