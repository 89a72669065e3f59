using System.Net;
using System.Text.RegularExpressions;
using Ams.Tests.Support;

namespace Ams.Tests.Browser;

/// <summary>A browser's side of the cookie flow: pages, form posts with the anti-forgery token, cookies.</summary>
sealed partial class Browser(IAlbaHost app, bool https = false)
{
    readonly Dictionary<string, string> cookies = new();
    public string? Csrf { get; private set; }
    /// <summary>The client address; its own, so per-address throttles of other tests do not meet it.</summary>
    public string Address { get; init; } = "192.0.2.200";
    public List<string> LastSetCookies { get; } = new();

    public async Task<IScenarioResult> GetAsync(string url, int status = 200, string? bearer = null, string? accept = null)
    {
        var result = await app.Scenario(s =>
        {
            s.Get.Url(url);
            Prepare(s);
            if (accept is not null) s.WithRequestHeader("Accept", accept);
            if (bearer is not null) s.WithRequestHeader("Authorization", $"Bearer {bearer}");
            s.StatusCodeShouldBe(status);
        });
        Absorb(result);
        var html = await result.ReadAsTextAsync();
        if (CsrfField().Match(html) is { Success: true } m) Csrf = WebUtility.HtmlDecode(m.Groups[1].Value);
        return result;
    }

    public async Task<IScenarioResult> PostFormAsync(string url, Dictionary<string, string> form, int status, bool withToken = true, bool htmx = false,
        bool tokenInHeader = false)
    {
        if (withToken && !tokenInHeader && Csrf is not null) form["_csrf"] = Csrf;
        var result = await app.Scenario(s =>
        {
            s.Post.FormData(form).ToUrl(url);
            Prepare(s);
            if (withToken && tokenInHeader && Csrf is not null) s.WithRequestHeader("X-CSRF-Token", Csrf);
            if (htmx) s.WithRequestHeader("HX-Request", "true");
            s.StatusCodeShouldBe(status);
        });
        Absorb(result);
        return result;
    }

    public async Task<IScenarioResult> PostAsync(string url, int status, string? csrfHeader)
    {
        var result = await app.Scenario(s =>
        {
            s.Post.Url(url);
            Prepare(s);
            if (csrfHeader is not null) s.WithRequestHeader("X-CSRF-Token", csrfHeader);
            s.StatusCodeShouldBe(status);
        });
        Absorb(result);
        return result;
    }

    /// <summary>Sent with every request, as a browser sends its own (Sec-Fetch-*).</summary>
    public Dictionary<string, string> Headers { get; } = [];

    void Prepare(Scenario s)
    {
        s.From(Address);
        foreach (var (name, value) in Headers) s.WithRequestHeader(name, value);
        if (https) s.ConfigureHttpContext(c => c.Request.Scheme = "https");
        if (cookies.Count > 0) s.WithRequestHeader("Cookie", string.Join("; ", cookies.Select(c => $"{c.Key}={c.Value}")));
    }

    void Absorb(IScenarioResult result)
    {
        LastSetCookies.Clear();
        foreach (var header in result.Context.Response.Headers.SetCookie)
        {
            LastSetCookies.Add(header!);
            var pair = header!.Split(';')[0];
            var (name, value) = (pair[..pair.IndexOf('=')], pair[(pair.IndexOf('=') + 1)..]);
            if (value.Length == 0 || header.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase)) cookies.Remove(name);
            else cookies[name] = value;
        }
    }

    public bool Has(string cookie) => cookies.ContainsKey(cookie);

    [GeneratedRegex("name=\"_csrf\" value=\"([^\"]+)\"")]
    private static partial Regex CsrfField();

    /// <summary>A newly registered user, signed in through the form.</summary>
    public static async Task<(Browser Browser, string Username)> SignedInAsync(Services services, bool https = false, string? displayName = null)
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("web");
        await app.RegisterAsync(name, displayName: displayName);
        var browser = new Browser(app, https);
        await browser.GetAsync("/login");
        var login = await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303);
        Assert.Equal("/", login.Context.Response.Headers.Location.ToString());
        return (browser, name);
    }
}
