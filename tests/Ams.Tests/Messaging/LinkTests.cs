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
}
