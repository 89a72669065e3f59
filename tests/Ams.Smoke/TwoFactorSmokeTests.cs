using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using OtpNet;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>Enrolment, the login step-up and recovery codes on the AOT binary (QR rendering included).</summary>
public sealed class TwoFactorSmokeTests(AppProcess app) : IClassFixture<AppProcess>
{
    const string Password = "correct horse battery staple";

    [Fact]
    public async Task Enrol_and_sign_in_with_a_second_factor()
    {
        var name = $"tf{Guid.NewGuid():N}"[..20];
        using var client = app.Client();
        await client.PostAsJsonAsync("/api/register", new { username = name, password = Password });
        var login = await (await client.PostAsJsonAsync("/api/login", new { username = name, password = Password })).Content.ReadFromJsonAsync<JsonObject>();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", login!["token"]!.GetValue<string>());

        var setup = await (await client.PostAsJsonAsync("/api/2fa/setup", new { password = Password })).Content.ReadFromJsonAsync<JsonObject>();
        Assert.StartsWith("<svg", setup!["qrSvg"]!.GetValue<string>());
        var secret = Base32Encoding.ToBytes(setup["secret"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsJsonAsync("/api/2fa/enable", new { code = "000000" })).StatusCode);
        var enabled = await client.PostAsJsonAsync("/api/2fa/enable", new { code = new Totp(secret).ComputeTotp() });
        Assert.Equal(HttpStatusCode.OK, enabled.StatusCode);
        var recovery = (await enabled.Content.ReadFromJsonAsync<JsonObject>())!["recoveryCodes"]!.AsArray().Select(c => c!.GetValue<string>()).ToList();
        Assert.Equal(10, recovery.Count);
        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsJsonAsync("/api/2fa/setup", new { password = Password })).StatusCode);

        using var anonymous = app.Client();
        var step = await (await anonymous.PostAsJsonAsync("/api/login", new { username = name, password = Password })).Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(step!["twoFactorRequired"]!.GetValue<bool>());
        var challenge = step["challenge"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync("/api/login/2fa", new { challenge, code = "000000" })).StatusCode);
        var signedIn = await anonymous.PostAsJsonAsync("/api/login/2fa", new { challenge, code = recovery[0] });
        Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);
        Assert.StartsWith("ams_", (await signedIn.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, (await anonymous.PostAsJsonAsync("/api/login/2fa", new { challenge })).StatusCode);

        var settings = await client.GetAsync("/settings/2fa");
        Assert.Equal(HttpStatusCode.OK, settings.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsJsonAsync("/api/2fa/recovery-codes", new { code = "1" })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsJsonAsync("/api/2fa/disable", new { password = "wrong wrong wrong", code = recovery[1] })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await client.PostAsJsonAsync("/api/2fa/disable", new { password = Password, code = recovery[2] })).StatusCode);
    }
}
