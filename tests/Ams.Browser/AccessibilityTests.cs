using System.Text.Json;
using Ams.Testing;
using Microsoft.Playwright;
using static Ams.Browser.Driver;

namespace Ams.Browser;

/// <summary>axe-core (npm, pinned in package-lock.json) on every page a new user sees, phone and desktop, light and dark.</summary>
[Collection(BrowserCollection.Name)]
public sealed class AccessibilityTests(AppProcess app, Chromium chromium)
{
    readonly Driver driver = new(app, chromium);
    static readonly string Axe = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "axe.min.js"));

    static async Task<string[]> ViolationsAsync(IPage page)
    {
        await page.AddScriptTagAsync(new() { Content = Axe });
        var violations = await page.EvaluateAsync<JsonElement>("""
            async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
              .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)
            """);
        return violations.EnumerateArray().Select(v => $"{page.Url}: {v.GetString()}").ToArray();
    }

    [Theory]
    [InlineData(375, false)]
    [InlineData(375, true)]
    [InlineData(1280, false)]
    [InlineData(1280, true)]
    public async Task Login_register_the_chat_list_and_a_conversation_have_no_axe_violations(int width, bool dark)
    {
        var alice = await driver.RegisterAsync("xa", "Alice");
        var bob = await driver.RegisterAsync("xb", "Bob");
        var api = await driver.ApiAsync(alice);
        var id = await ConversationAsync(api, [bob], "Design review");
        await SendAsync(api, id, "The mock-ups are in https://example.com/mockups");
        await SendAsync(await driver.ApiAsync(bob), id, "Looking now.\nTwo lines.");

        var visitor = await (await driver.ContextAsync(width, dark: dark, bypassCsp: true)).NewPageAsync();
        var found = new List<string>();
        foreach (var path in new[] { "/login", "/register" })
        {
            await visitor.GotoAsync(path);
            await Assertions.Expect(visitor.Locator("h1")).ToHaveCountAsync(1);
            found.AddRange(await ViolationsAsync(visitor));
        }
        var page = await driver.SignedInAsync(alice, width, dark: dark, bypassCsp: true);
        await Assertions.Expect(page.Locator(".entropy")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#new-chat")).ToBeAttachedAsync();
        found.AddRange(await ViolationsAsync(page));
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#receipt")).ToBeAttachedAsync();
        found.AddRange(await ViolationsAsync(page));
        Assert.True(found.Count == 0, string.Join("\n", found));
    }
}
