using Ams.Tests.Messaging;
using Ams.Tests.Support;

namespace Ams.Tests.Browser;

/// <summary>
/// A display name is anyone's to choose: the chat shows the username beside one that is not the
/// username itself, wherever it names a member (an outside check posed as "Alice" and as "Аlice"
/// with a Cyrillic А, and the chat showed the display name alone).
/// </summary>
public sealed class HandleTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task A_member_named_like_another_is_shown_with_the_username_and_one_named_as_the_username_without()
    {
        var app = await services.AppAsync();
        var real = Api.UniqueName("al");
        await app.RegisterAsync(real, displayName: real.ToUpperInvariant());
        var fake = await app.MemberAsync("af", displayName: real.ToUpperInvariant());
        var cyrillic = await app.MemberAsync("ac", displayName: "Аlice <b>");
        var browser = new Browser(app);
        await browser.GetAsync("/login");
        await browser.PostFormAsync("/login", new() { ["username"] = real, ["password"] = Api.Password }, 303);
        var me = new Member(real, await app.LoginAsync(real), real.ToUpperInvariant());
        var group = await app.GroupAsync(me, "who is who", fake, cyrillic);
        await app.SendAsync(me, group.Id(), "from the real one");
        await app.SendAsync(fake, group.Id(), "from the fake one");
        await app.SendAsync(cyrillic, group.Id(), "from the other fake");

        var messages = await (await browser.GetAsync($"/c/{group.Id()}/older")).ReadAsTextAsync();
        Assert.Contains($"""<span class="sender">{real.ToUpperInvariant()}</span> <time""", messages);
        Assert.Contains($"""<span class="sender">{real.ToUpperInvariant()}</span> <span class="handle">@{fake.Name}</span> <time""", messages);
        Assert.Contains($"""<span class="sender">&#x410;lice &lt;b&gt;</span> <span class="handle">@{cyrillic.Name}</span> <time""", messages);
        Assert.DoesNotContain($"@{real}", messages);
        // The member list and the inbox preview say the same.
        var page = await (await browser.GetAsync($"/c/{group.Id()}")).ReadAsTextAsync();
        Assert.Contains($"""{real.ToUpperInvariant()} <span class="handle">@{fake.Name}</span><span class="visually-hidden">""", page);
        Assert.Contains($"""&#x410;lice &lt;b&gt; <span class="handle">@{cyrillic.Name}</span><span class="visually-hidden">""", page);
        Assert.DoesNotContain($"{real.ToUpperInvariant()} <span class=\"handle\">@{real}</span>", page);
        var list = await (await browser.GetAsync("/c/list")).ReadAsTextAsync();
        Assert.Contains($"""&#x410;lice &lt;b&gt; <span class="handle">@{cyrillic.Name}</span>: <bdi>from the other fake</bdi>""", list);
    }
}
