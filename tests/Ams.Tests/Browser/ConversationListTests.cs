using System.Text.RegularExpressions;
using Ams.Tests.Messaging;
using Ams.Tests.Support;

namespace Ams.Tests.Browser;

/// <summary>The chat's conversation list pages like the inbox: 50 at a time, and every conversation opens.</summary>
public sealed partial class ConversationListTests(Services services) : IClassFixture<Services>
{
    [GeneratedRegex("""<li id="c-(\d+)" data-conversation""")]
    private static partial Regex Item();

    [GeneratedRegex("""<li class="more"><button type="button" data-before="(\d+)">Older conversations</button></li>""")]
    private static partial Regex More();

    static List<string> Items(string html) => Item().Matches(html).Select(m => m.Groups[1].Value).ToList();

    [Fact]
    public async Task A_list_longer_than_a_page_ends_in_a_button_for_the_rest_and_an_older_conversation_still_opens()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Conversations:MaxCreates"] = "100" });
        var me = await app.MemberAsync("pg");
        var other = await app.MemberAsync("pg");
        var groups = new List<string>();
        for (var i = 0; i < 52; i++) groups.Add((await app.GroupAsync(me, $"group {i:00}", other)).Id());
        groups.Reverse();   // newest activity first, as the list shows them
        var browser = new Browser(app);
        await browser.GetAsync("/login");
        await browser.PostFormAsync("/login", new() { ["username"] = me.Name, ["password"] = Api.Password }, 303);

        var page = await (await browser.GetAsync("/")).ReadAsTextAsync();
        Assert.Equal(groups[..50], Items(page));
        Assert.Equal(groups[49], More().Match(page).Groups[1].Value);

        var rest = await (await browser.GetAsync($"/c/list?before={groups[49]}")).ReadAsTextAsync();
        Assert.Equal(groups[50..], Items(rest));
        Assert.DoesNotMatch(More(), rest);

        // A refresh asks for as many as are shown.
        var refreshed = await (await browser.GetAsync("/c/list?limit=51")).ReadAsTextAsync();
        Assert.Equal(groups[..51], Items(refreshed));
        Assert.Equal(groups[50], More().Match(refreshed).Groups[1].Value);
        Assert.DoesNotMatch(More(), await (await browser.GetAsync("/c/list?limit=52")).ReadAsTextAsync());

        // The oldest, not on the first page, opens; a stranger's conversation still does not.
        var oldest = await (await browser.GetAsync($"/c/{groups[51]}")).ReadAsTextAsync();
        Assert.Contains("<title>group 00", oldest);
        Assert.Contains($"""data-conversation="{groups[51]}" """.TrimEnd(), oldest);
        var stranger = await app.MemberAsync("pg");
        var theirs = (await app.GroupAsync(stranger, "not yours", other)).Id();
        await browser.GetAsync($"/c/{theirs}", 404);

        foreach (var query in new[] { "limit=0", "limit=201", "limit=x", "before=abc", "before=0" })
        {
            var refused = await browser.GetAsync($"/c/list?{query}", 400);
            await refused.ProblemAsync(400);
        }
    }

    [Fact]
    public async Task A_body_in_another_direction_is_isolated_in_the_message_and_the_preview()
    {
        var app = await services.AppAsync();
        var me = await app.MemberAsync("bd");
        var other = await app.MemberAsync("bd");
        var group = (await app.GroupAsync(me, "bidi", other)).Id();
        // A right-to-left override: unisolated, it would reorder the rest of its line on the page.
        await app.SendAsync(other, group, "bidi \u202egnp.exe <b>");
        var browser = new Browser(app);
        await browser.GetAsync("/login");
        await browser.PostFormAsync("/login", new() { ["username"] = me.Name, ["password"] = Api.Password }, 303);
        var page = await (await browser.GetAsync($"/c/{group}")).ReadAsTextAsync();
        Assert.Contains($"<span class=\"preview\">{other.Name}: <bdi>bidi &#x202E;gnp.exe &lt;b&gt;</bdi></span>", page);
        var messages = await (await browser.GetAsync($"/c/{group}/older")).ReadAsTextAsync();
        Assert.Contains("<p class=\"body\" dir=\"auto\">bidi &#x202E;gnp.exe &lt;b&gt;</p>", messages);
    }
}
