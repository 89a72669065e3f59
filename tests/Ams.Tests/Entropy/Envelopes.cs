using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MySqlConnector;

namespace Ams.Tests.Entropy;

static class Envelopes
{
    /// <summary>A fresh envelope (empty key cache) on the app's database and mixer, under the given master keys.</summary>
    public static Envelope For(IAlbaHost app, string masterKeys, CapturedLogs? logs = null, TimeProvider? time = null) => new(
        app.Services.GetRequiredService<MariaDb>(), MasterKeys.Parse(masterKeys),
        app.Services.GetRequiredService<EntropyMixer>(), app.Services.GetRequiredService<IKeyMintCounter>(),
        time ?? TimeProvider.System, logs is null ? NullLogger<Envelope>.Instance : new LoggerFactory([logs]).CreateLogger<Envelope>());
}
