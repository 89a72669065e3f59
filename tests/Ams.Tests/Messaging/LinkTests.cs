using Ams.Infrastructure.Messaging;

namespace Ams.Tests.Messaging;

/// <summary>Which part of a message becomes a link (MessageFragment.Linked): the browser shows exactly that part as one.</summary>
public sealed class LinkTests
{
    static string[] Hrefs(string body) =>
        [.. System.Text.RegularExpressions.Regex.Matches(MessageFragment.Linked(body).Value, "href=\"([^\"]*)\"").Select(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value))];

    [Theory]
    [InlineData("see https://example.com/a.", "https://example.com/a")]
    [InlineData("(see https://example.com/a)", "https://example.com/a")]
    [InlineData("https://en.wikipedia.org/wiki/Mercury_(planet)", "https://en.wikipedia.org/wiki/Mercury_(planet)")]
    [InlineData("(see https://example.com/path_(x)).", "https://example.com/path_(x)")]
    [InlineData("[https://example.com/list[1]]", "https://example.com/list[1]")]
    [InlineData("'https://example.com/q?a=1&b=2',", "https://example.com/q?a=1&b=2")]
    [InlineData("https://example.com/a)))]]].", "https://example.com/a")]
    [InlineData("((https://example.com/(a)(b)))", "https://example.com/(a)(b)")]
    [InlineData("https://example.com/[a](b)],", "https://example.com/[a](b)")]
    // A bidirectional control ends the address: the text after it would read as another one.
    [InlineData("https://example.com/\u202Egnp.exe", "https://example.com/")]
    public void An_address_is_linked_without_the_punctuation_around_it(string body, string href) =>
        Assert.Equal([href], Hrefs(body));

    [Theory]
    [InlineData("https://\u202Emoc.elgoog")]
    [InlineData("https://\u2067x.example")]
    [InlineData("javascript:alert(1)")]
    [InlineData("https://")]
    public void No_link_where_nothing_but_a_scheme_would_be_linked(string body) => Assert.Empty(Hrefs(body));

    // The link's text is isolated left to right: an override before it (U+202E) would otherwise
    // make it read as another address than the one it opens.
    [Fact]
    public void A_link_reads_left_to_right_whatever_comes_before_it() =>
        Assert.Contains("<a href=\"https://evil.example/?moc.elgoog\" dir=\"ltr\"", MessageFragment.Linked("Login: \u202Ehttps://evil.example/?moc.elgoog").Value);

    // Every page and stream that shows a message renders it: a body of one address and a long run
    // of ')' must cost its length, not its square (counted per ')' it took 0.12 s at 4,000
    // characters; at 60,000 that is about 30 s, where the single count takes microseconds).
    [Fact]
    public void Trailing_brackets_cost_their_length_not_its_square()
    {
        var body = "https://a.example/" + new string(')', 60_000);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(["https://a.example/"], Hrefs(body));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed.TotalSeconds:F1} s");
    }
}
