using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Ams.Testing;
using Microsoft.Playwright;
using static Ams.Browser.Driver;

namespace Ams.Browser;

/// <summary>Issue 17: the faults a careful user hits in the first ten minutes, one test each.</summary>
[Collection(BrowserCollection.Name)]
public sealed class AuditTests(AppProcess app, Chromium chromium)
{
    readonly Driver driver = new(app, chromium);

    // 1. History cascade
    [Fact]
    public async Task Scrolling_to_the_top_loads_one_older_page_and_keeps_the_readers_place()
    {
        // Four senders, 50 messages each: 200 in all, under every sender's send throttle.
        var names = new[] { await driver.RegisterAsync("ha"), await driver.RegisterAsync("hb"), await driver.RegisterAsync("hc"), await driver.RegisterAsync("hd") };
        var clients = await Task.WhenAll(names.Select(driver.ApiAsync));
        var id = await ConversationAsync(clients[0], names[1..], "History");
        for (var round = 0; round < 50; round++)
            for (var s = 0; s < 4; s++)
                await SendAsync(clients[s], id, $"message {round * 4 + s + 1}");

        var page = await driver.SignedInAsync(names[0]);
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(50);
        await Assertions.Expect(Messages(page).Last).ToContainTextAsync("message 200");
        var firstShown = await Messages(page).First.GetAttributeAsync("id");
        const string offsetOf = "(id) => document.getElementById(id).getBoundingClientRect().top - document.getElementById('messages').getBoundingClientRect().top";

        await page.EvaluateAsync("() => { const list = document.getElementById('messages'); list.scrollTop = 0; }");
        var offsetBefore = await page.EvaluateAsync<double>(offsetOf, firstShown);
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(100);
        await page.WaitForTimeoutAsync(1500);
        Assert.Equal(100, await Messages(page).CountAsync());
        // The message that was at the top is still where the reader saw it.
        Assert.InRange(await page.EvaluateAsync<double>(offsetOf, firstShown) - offsetBefore, -3, 3);

        // The next scroll to the top brings the next page, and only that one.
        await page.EvaluateAsync("() => { document.getElementById('messages').scrollTop = 0; }");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(150);
        await page.WaitForTimeoutAsync(1000);
        Assert.Equal(150, await Messages(page).CountAsync());
    }

    // 2. Double send
    [Fact]
    public async Task Pressing_Enter_twice_quickly_sends_once_and_every_send_carries_an_Idempotency_Key()
    {
        var alice = await driver.RegisterAsync("da");
        var bob = await driver.RegisterAsync("db");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob]);
        var page = await driver.SignedInAsync(alice);
        await page.GotoAsync($"/c/{id}");
        var keys = new ConcurrentQueue<string?>();
        page.Request += (_, request) =>
        {
            if (request.Method == "POST" && (request.Url.EndsWith("/send") || request.Url.EndsWith("/api/messages")))
                keys.Enqueue(request.Headers.TryGetValue("idempotency-key", out var key) ? key : null);
        };
        await Composer(page).FillAsync("only once");
        await page.EvaluateAsync("""
            () => { const body = document.getElementById('body');
                    for (let i = 0; i < 2; i++) body.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })); }
            """);
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(1);
        await page.WaitForTimeoutAsync(1000);
        Assert.Equal(1, await Messages(page).CountAsync());
        await TypeAndSendAsync(page, "second message");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(2);
        Assert.Equal(2, keys.Count);
        Assert.All(keys, key => Assert.Matches("^[\\x21-\\x7e]{16,64}$", key ?? ""));
        Assert.Equal(2, keys.Distinct().Count());
    }

    // 3. Silent failures: the send
    [Fact]
    public async Task A_send_that_fails_offline_shows_Retry_in_place_keeps_the_draft_and_throws_nothing()
    {
        var alice = await driver.RegisterAsync("fa");
        var bob = await driver.RegisterAsync("fb");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob]);
        var page = await driver.SignedInAsync(alice);
        var errors = new ConcurrentQueue<string>();
        page.PageError += (_, error) => errors.Enqueue(error);
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(page.Locator("#messages")).ToBeVisibleAsync();

        await page.Context.SetOfflineAsync(true);
        await Composer(page).FillAsync("sent from a tunnel");
        await Composer(page).PressAsync("Enter");
        var failed = page.Locator("#composer [role=alert]");
        await Assertions.Expect(failed).ToContainTextAsync("Not sent");
        await Assertions.Expect(Composer(page)).ToHaveValueAsync("sent from a tunnel");
        var retry = page.GetByRole(AriaRole.Button, new() { Name = "Retry" });
        await Assertions.Expect(retry).ToBeVisibleAsync();

        await page.Context.SetOfflineAsync(false);
        await retry.ClickAsync();
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(1, new() { Timeout = 15_000 });
        await Assertions.Expect(Messages(page).First).ToContainTextAsync("sent from a tunnel");
        await Assertions.Expect(Composer(page)).ToHaveValueAsync("");
        await Assertions.Expect(retry).ToHaveCountAsync(0);
        Assert.Empty(errors);
    }

    // 3. Silent failures: a text the server refuses says why
    [Fact]
    public async Task The_composer_takes_4000_emoji_and_a_text_over_the_limit_is_refused_in_the_servers_words()
    {
        var alice = await driver.RegisterAsync("la");
        var bob = await driver.RegisterAsync("lb");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob]);
        var page = await driver.SignedInAsync(alice);
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(page.Locator("#messages")).ToBeVisibleAsync();

        // 4000 characters of two UTF-16 units each: the server's limit, which a maxlength of 4000 cut in half.
        var emoji = string.Concat(Enumerable.Repeat("🦊", 4000));
        await Composer(page).FillAsync(emoji);
        await Assertions.Expect(Composer(page)).ToHaveValueAsync(emoji);
        await Composer(page).PressAsync("Enter");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(1, new() { Timeout = 15_000 });

        await Composer(page).FillAsync(new string('x', 4001));
        await Composer(page).PressAsync("Enter");
        await Assertions.Expect(page.Locator("#composer [role=alert]")).ToContainTextAsync("Not sent: Body must be at most 4000 characters. Your text is kept.");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(1);
    }

    // 3. Silent failures: a send while live delivery is held up (Redis down) still shows
    [Fact]
    public async Task A_sent_message_shows_at_once_without_the_live_stream_and_once_when_the_stream_brings_it()
    {
        var alice = await driver.RegisterAsync("sa");
        var bob = await driver.RegisterAsync("sb");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob]);
        var page = await driver.SignedInAsync(alice);
        // No stream at all: what shows came with the send's own answer.
        await page.RouteAsync("**/events**", route => route.AbortAsync());
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(page.Locator("#messages")).ToBeVisibleAsync();
        await Composer(page).FillAsync("stored, not yet delivered");
        await Composer(page).PressAsync("Enter");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(1);
        await Assertions.Expect(Messages(page).First).ToContainTextAsync("stored, not yet delivered");
        await Assertions.Expect(Composer(page)).ToHaveValueAsync("");

        // With the stream: shown once, though it comes both ways.
        await page.UnrouteAllAsync();
        await page.ReloadAsync();
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(1);
        await Composer(page).FillAsync("both ways");
        await Composer(page).PressAsync("Enter");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(2);
        await page.WaitForTimeoutAsync(1000);
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(2);
    }

    // 3. Silent failures: a refusal htmx has no fragment for
    [Fact]
    public async Task A_form_refused_with_a_problem_says_why_in_the_form_instead_of_showing_JSON()
    {
        var name = await driver.RegisterAsync("fr");
        var context = await driver.ContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync("/login");
        // A stale anti-forgery token (a sign-in or sign-out in another tab since the page was rendered).
        await page.Locator("#login input[name=_csrf]").EvaluateAsync("input => input.value = 'stale'");
        await page.GetByLabel("Username").FillAsync(name);
        await page.GetByLabel("Password").FillAsync(Driver.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.Locator("#login [role=alert]")).ToHaveTextAsync(
            "This page was out of date (signed in or out in another tab, say). It is up to date now: try again.");
        await Assertions.Expect(page.GetByLabel("Username")).ToHaveValueAsync(name);
        Assert.DoesNotContain("\"status\"", await page.ContentAsync());
        // The form took the token of the cookies held now: the same click signs in.
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/");
    }

    // 3. Silent failures: the live stream
    [Fact]
    public async Task A_dropped_live_stream_announces_Reconnecting_and_clears_it_when_back()
    {
        var alice = await driver.RegisterAsync("ca");
        var page = await driver.SignedInAsync(alice);
        var status = page.Locator("#connection");
        await Assertions.Expect(status).ToHaveAttributeAsync("role", "status");
        await Assertions.Expect(status).ToHaveTextAsync("");
        await app.StopAsync();
        try
        {
            await Assertions.Expect(status).ToHaveTextAsync("Reconnecting…", new() { Timeout = 15_000 });
        }
        finally
        {
            await app.StartAgainAsync();
        }
        await Assertions.Expect(status).ToHaveTextAsync("", new() { Timeout = 30_000 });
    }

    // 4. Phones
    [Fact]
    public async Task On_a_phone_the_composer_is_in_view_the_page_does_not_scroll_and_Enter_is_a_new_line()
    {
        var alice = await driver.RegisterAsync("pa");
        var bob = await driver.RegisterAsync("pb");
        var api = await driver.ApiAsync(alice);
        var id = await ConversationAsync(api, [bob]);
        for (var i = 1; i <= 20; i++) await SendAsync(api, id, $"filler {i}");
        foreach (var (width, height) in new[] { (375, 667), (320, 568) })
        {
            var page = await driver.SignedInAsync(alice, width, height, touch: true);
            await page.GotoAsync($"/c/{id}");
            await Assertions.Expect(Messages(page)).ToHaveCountAsync(20);
            var send = page.GetByRole(AriaRole.Button, new() { Name = "Send" });
            var box = (await send.BoundingBoxAsync())!;
            Assert.True(box.Y + box.Height <= height, $"Send ends at {box.Y + box.Height} px of {height}");
            Assert.True(await page.EvaluateAsync<bool>("() => document.scrollingElement.scrollHeight <= innerHeight + 1"), "the page itself scrolls");
            var composerHeight = (await page.Locator("#composer").BoundingBoxAsync())!.Height;
            Assert.True(composerHeight <= 130, $"composer is {composerHeight} px tall");
            await Assertions.Expect(page.Locator("#composer .hint")).ToBeHiddenAsync();
        }

        var phone = await driver.SignedInAsync(alice, 375, 667, touch: true);
        await phone.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(phone)).ToHaveCountAsync(20);
        await Composer(phone).FillAsync("line one");
        await Composer(phone).PressAsync("Enter");
        await Composer(phone).PressSequentiallyAsync("line two");
        await Assertions.Expect(Composer(phone)).ToHaveValueAsync("line one\nline two");
        await phone.WaitForTimeoutAsync(500);
        Assert.Equal(20, await Messages(phone).CountAsync());
        await phone.GetByRole(AriaRole.Button, new() { Name = "Send" }).TapAsync();
        await Assertions.Expect(Messages(phone)).ToHaveCountAsync(21);
        await Assertions.Expect(Messages(phone).Last.Locator("p")).ToHaveTextAsync("line one\nline two");
    }

    // 5. Switching chats
    [Fact]
    public async Task Switching_chats_focuses_the_composer_and_the_keyboard_moves_between_chats()
    {
        var alice = await driver.RegisterAsync("sa");
        var bob = await driver.RegisterAsync("sb");
        var api = await driver.ApiAsync(alice);
        var alpha = await ConversationAsync(api, [bob], "Alpha team");
        var beta = await ConversationAsync(api, [bob], "Beta team");
        var page = await driver.SignedInAsync(alice);

        // A skip link comes first.
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("skip", await page.EvaluateAsync<string>("() => document.activeElement.className"));

        await page.GotoAsync($"/c/{alpha}");
        await page.Locator("#conversations a", new() { HasText = "Beta team" }).ClickAsync();
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == $"/c/{beta}");
        await Assertions.Expect(Composer(page)).ToBeFocusedAsync();
        await Assertions.Expect(page.Locator("#conversations a[aria-current=page]")).ToHaveTextAsync(new Regex("Beta team"));
        await Assertions.Expect(page.Locator("#conversations li[aria-current]")).ToHaveCountAsync(0);

        // Alt+↓ and Alt+↑ move through the list.
        var order = await page.Locator("#conversations a").EvaluateAllAsync<string[]>("links => links.map(a => a.getAttribute('href'))");
        var other = order.Single(href => href != $"/c/{beta}");
        await page.Keyboard.PressAsync(order[0] == $"/c/{beta}" ? "Alt+ArrowDown" : "Alt+ArrowUp");
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == other);
        await Assertions.Expect(Composer(page)).ToBeFocusedAsync();

        // Ctrl+K: the quick switcher.
        await page.Keyboard.PressAsync("Control+k");
        var search = page.GetByRole(AriaRole.Combobox, new() { Name = "Jump to a conversation" });
        await Assertions.Expect(search).ToBeFocusedAsync();
        await search.FillAsync("beta");
        await search.PressAsync("Enter");
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == $"/c/{beta}");
        await Assertions.Expect(Composer(page)).ToBeFocusedAsync();
    }

    // 6. Overflow
    [Fact]
    public async Task A_long_unbroken_group_title_does_not_widen_the_page_on_a_phone()
    {
        var alice = await driver.RegisterAsync("oa");
        var bob = await driver.RegisterAsync("ob");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob], new string('W', 100));
        var page = await driver.SignedInAsync(alice, 375);
        foreach (var path in new[] { "/", $"/c/{id}" })
        {
            await page.GotoAsync(path);
            await Assertions.Expect(page.Locator("#conversations li")).ToHaveCountAsync(1);
            Assert.Equal(375, await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth"));
        }
    }

    [Fact]
    public async Task A_long_unbroken_display_name_wraps_in_the_history_on_a_phone()
    {
        var alice = await driver.RegisterAsync("wa");
        var bob = await driver.RegisterAsync("wb", new string('W', 60));
        var api = await driver.ApiAsync(bob);
        var id = await ConversationAsync(api, [alice], "Names");
        await SendAsync(api, id, "hello");
        var page = await driver.SignedInAsync(alice, 375);
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(1);
        // The list does not scroll sideways (it did: 652 px of content in 361).
        Assert.True(await page.EvaluateAsync<bool>("() => { const l = document.getElementById('messages'); return l.scrollWidth <= l.clientWidth; }"));
    }

    [Fact]
    public async Task An_image_arriving_last_leaves_the_reader_at_the_end_once_it_has_loaded()
    {
        var alice = await driver.RegisterAsync("ia");
        var bob = await driver.RegisterAsync("ib");
        var api = await driver.ApiAsync(bob);
        var id = await ConversationAsync(api, [alice], "Pictures");
        for (var i = 0; i < 30; i++) await SendAsync(api, id, $"line {i}");
        var page = await driver.SignedInAsync(alice);
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(30);

        using var form = new MultipartFormDataContent { { new ByteArrayContent(Png(160, 240)), "file", "tall.png" } };
        form.First().Headers.ContentType = new("image/png");
        var upload = await (await api.PostAsync("/api/attachments", form)).Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>();
        var sent = await api.PostAsJsonAsync("/api/messages", new { conversationId = id, body = "", attachments = new[] { upload!["id"]!.GetValue<string>() } });
        Assert.True(sent.IsSuccessStatusCode, await sent.Content.ReadAsStringAsync());
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#messages img')].some(i => i.complete && i.naturalHeight > 0)");
        await page.WaitForTimeoutAsync(300);
        // It was scrolled to its end before the image had a height: the image's 240 px were left below.
        Assert.InRange(await page.EvaluateAsync<double>("() => { const l = document.getElementById('messages'); return l.scrollHeight - l.scrollTop - l.clientHeight; }"), 0, 2);
    }

    /// <summary>A PNG of one colour, <paramref name="width"/> × <paramref name="height"/> (8-bit grey).</summary>
    static byte[] Png(int width, int height)
    {
        static byte[] Chunk(string type, byte[] data)
        {
            var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            uint crc = 0xFFFFFFFF;
            foreach (var b in typed)
            {
                crc ^= b;
                for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
            }
            crc ^= 0xFFFFFFFF;
            return [.. BigEndian((uint)data.Length), .. typed, .. BigEndian(crc)];
        }
        static byte[] BigEndian(uint value) => [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value];
        var rows = new byte[height * (width + 1)];   // filter byte 0, then grey 0x80 per pixel
        for (var y = 0; y < height; y++) Array.Fill(rows, (byte)0x80, y * (width + 1) + 1, width);
        using var compressed = new MemoryStream();
        using (var zlib = new System.IO.Compression.ZLibStream(compressed, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true)) zlib.Write(rows);
        byte[] header = [.. BigEndian((uint)width), .. BigEndian((uint)height), 8, 0, 0, 0, 0];
        return [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", header), .. Chunk("IDAT", compressed.ToArray()), .. Chunk("IEND", [])];
    }

    // 7. Accessibility details
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Chat_pages_have_a_heading_a_focusable_history_contrasting_borders_and_announce_only_new_messages(bool dark)
    {
        var alice = await driver.RegisterAsync("aa", "Alice");
        var bob = await driver.RegisterAsync("ab", "Bob");
        var aliceApi = await driver.ApiAsync(alice);
        var id = await ConversationAsync(aliceApi, [bob]);
        await ConversationAsync(aliceApi, [bob], "Other group");
        for (var i = 1; i <= 3; i++) await SendAsync(aliceApi, id, $"old news {i}");
        var page = await driver.SignedInAsync(bob, dark: dark);
        await Assertions.Expect(page.Locator("h1")).ToHaveCountAsync(1);
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(page.Locator("h1")).ToHaveCountAsync(1);
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(3);

        var list = page.Locator("#messages");
        await Assertions.Expect(list).ToHaveAttributeAsync("tabindex", "0");
        Assert.Null(await list.GetAttributeAsync("aria-live"));
        await list.FocusAsync();
        Assert.True(await list.EvaluateAsync<bool>("el => getComputedStyle(el).outlineStyle !== 'none' && parseFloat(getComputedStyle(el).outlineWidth) >= 2"),
            "the focused message list shows no focus ring");

        var card = await page.Locator("#panel").EvaluateAsync<string>("el => getComputedStyle(el).backgroundColor");
        var border = await Composer(page).EvaluateAsync<string>("el => getComputedStyle(el).borderTopColor");
        Assert.True(await page.EvaluateAsync<double>(ContrastScript, new[] { border, card }) >= 3, $"input border {border} on {card}");
        var sidebar = await page.Locator(".sidebar").EvaluateAsync<string>("el => getComputedStyle(el).backgroundColor");
        var marker = await page.Locator("#conversations a[aria-current=page]").EvaluateAsync<string>("el => getComputedStyle(el).borderLeftColor");
        var markerWidth = await page.Locator("#conversations a[aria-current=page]").EvaluateAsync<double>("el => parseFloat(getComputedStyle(el).borderLeftWidth)");
        Assert.True(markerWidth >= 3 && await page.EvaluateAsync<double>(ContrastScript, new[] { marker, sidebar }) >= 3,
            $"active chat marker {marker} ({markerWidth} px) on {sidebar}");

        // The history page was not announced; a new message is.
        var announcer = page.Locator("#announcer");
        await Assertions.Expect(announcer).ToHaveAttributeAsync("aria-live", "polite");
        Assert.DoesNotContain("old news", await announcer.TextContentAsync() ?? "");
        await SendAsync(aliceApi, id, "fresh news");
        await Assertions.Expect(announcer).ToContainTextAsync($"Alice (@{alice}): fresh news");
        Assert.DoesNotContain("old news", await announcer.TextContentAsync() ?? "");

        // Register says what a username may contain, in the field's description and the browser's message.
        var visitor = await (await driver.ContextAsync(dark: dark)).NewPageAsync();
        await visitor.GotoAsync("/register");
        var username = visitor.GetByLabel("Username");
        await Assertions.Expect(username).ToHaveAccessibleDescriptionAsync(new Regex("letters.*digits", RegexOptions.IgnoreCase));
        await username.FillAsync("no spaces please");
        Assert.Matches("letters", await username.EvaluateAsync<string>("el => el.validationMessage"));
    }

    // 8. Errors as pages
    [Fact]
    public async Task A_conversation_that_is_not_yours_is_an_HTML_404_page()
    {
        var alice = await driver.RegisterAsync("na");
        var page = await driver.SignedInAsync(alice);
        var response = await page.GotoAsync("/c/999999999");
        Assert.Equal(404, response!.Status);
        Assert.StartsWith("text/html", response.Headers["content-type"]);
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Conversation not found");
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Back to your chats" })).ToBeVisibleAsync();
    }

    // 9. Server internals
    [Fact]
    public async Task The_sidebar_tells_users_about_their_keys_and_nothing_about_the_server()
    {
        var alice = await driver.RegisterAsync("ea");
        var page = await driver.SignedInAsync(alice);
        var panel = page.Locator(".entropy");
        await Assertions.Expect(panel).ToContainTextAsync("atmospheric noise");
        var text = await panel.InnerTextAsync();
        foreach (var internals in new[] { "RandomOrg__ApiKey", "API key", "Pool", "bytes", "minted" })
            Assert.DoesNotContain(internals, text, StringComparison.OrdinalIgnoreCase);
    }

    // 10. Compact history
    [Fact]
    public async Task Consecutive_messages_from_one_sender_are_grouped_under_one_name()
    {
        var alice = await driver.RegisterAsync("ga", "Alice");
        var bob = await driver.RegisterAsync("gb", "Bob");
        var aliceApi = await driver.ApiAsync(alice);
        var bobApi = await driver.ApiAsync(bob);
        var id = await ConversationAsync(aliceApi, [bob]);
        foreach (var (client, text) in new[] { (aliceApi, "a1"), (aliceApi, "a2"), (aliceApi, "a3"), (bobApi, "b1"), (aliceApi, "a4") })
            await SendAsync(client, id, text);
        var page = await driver.SignedInAsync(bob);
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(5);
        var continued = await Messages(page).EvaluateAllAsync<bool[]>("items => items.map(li => li.classList.contains('continued'))");
        Assert.Equal([false, true, true, false, false], continued);
        await Assertions.Expect(Messages(page).Nth(1).Locator(".sender")).ToBeHiddenAsync();
        await Assertions.Expect(Messages(page).Nth(1).Locator(".handle")).ToBeHiddenAsync();
        await Assertions.Expect(Messages(page).Nth(0).Locator(".sender")).ToBeVisibleAsync();
        await Assertions.Expect(Messages(page).Nth(0).Locator(".handle")).ToBeVisibleAsync();
        // A live message continues the group it joins.
        await SendAsync(aliceApi, id, "a5");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(6);
        await Assertions.Expect(Messages(page).Last).ToHaveClassAsync(new Regex("\\bcontinued\\b"));
    }
}
