using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>The api.md <c>user</c> object.</summary>
public sealed record UserView(string Id, string Username, string DisplayName, bool TwoFactorEnabled, DateTime CreatedAt);

/// <summary>A <c>users</c> row as the slices read it (columns aliased to these names).</summary>
public sealed class UserRow
{
    public long Id { get; set; }
    public string Username { get; set; } = "";
    public string DisplayName { get; set; } = "";
    public string PasswordHash { get; set; } = "";
    public bool TwoFactorEnabled { get; set; }
    public DateTime CreatedAt { get; set; }
    /// <summary>Set by <c>Ams admin disable</c>: such an account cannot sign in.</summary>
    public DateTime? DisabledAt { get; set; }

    public UserView ToView() => new(Id.ToString(System.Globalization.CultureInfo.InvariantCulture), Username, DisplayName, TwoFactorEnabled,
        DateTime.SpecifyKind(CreatedAt, DateTimeKind.Utc));
}

public static class Users
{
    /// <summary>
    /// Whether any account could have this name. Usernames are ASCII (the column is ascii_bin), and
    /// MariaDB refuses to compare that column with text it cannot convert ("Illegal mix of
    /// collations"), so a lookup of anything else must not reach it: such a name is no account.
    /// </summary>
    public static bool CouldExist(string username) => System.Text.Ascii.IsValid(username);

    /// <summary>The select list that fills a <see cref="UserRow"/>.</summary>
    public const string RowColumns = """
        id AS Id, username AS Username, display_name AS DisplayName, password_hash AS PasswordHash,
        two_factor_enabled AS TwoFactorEnabled, created_at AS CreatedAt, disabled_at AS DisabledAt
        """;

    public static Task<UserRow?> FindByIdAsync(MariaDb db, long id, CancellationToken ct) => db.ReadUnlessHungAsync(connection =>
        connection.QuerySingleOrDefaultAsync<UserRow>($"SELECT {RowColumns} FROM users WHERE id = @id", new { id }, commandTimeout: connection.CommandTimeout()), ct);

    /// <summary>
    /// Whether a sign-in may keep the session it has just made: the account is still enabled and
    /// as the sign-in verified it (<paramref name="asVerified"/>: its password, 2FA). A password
    /// change, a reset, a disable or 2FA turned on commits first and then ends the user's sessions,
    /// so one that committed after the sign-in read the account and before this look missed the
    /// new session (an outside check kept 4 of 8 sign-ins racing a password change). After this
    /// look, the session is there for it to end.
    /// </summary>
    public static async Task<bool> StillAsSignedInAsync(MariaDb db, long id, Func<UserRow, bool> asVerified, CancellationToken ct) =>
        await FindByIdAsync(db, id, ct) is { DisabledAt: null } now && asVerified(now);

    /// <summary>The signed-in user of a page that anonymous visitors may also reach, or null.</summary>
    public static async Task<UserRow?> SignedInAsync(HttpContext http, MariaDb db, CancellationToken ct) =>
        http.User.Identity?.IsAuthenticated == true ? await FindByIdAsync(db, http.User.UserId(), ct) : null;

    /// <summary>The signed-in user of a page only they may see, or null once the visitor is sent to the sign-in page.</summary>
    public static async Task<UserRow?> SignedInOrToLoginAsync(HttpContext http, MariaDb db, CancellationToken ct)
    {
        var user = await SignedInAsync(http, db, ct);
        if (user is null)
        {
            http.Response.Redirect("/login");
            await http.Response.StartAsync(ct);   // sent: the endpoint then writes nothing more
        }
        return user;
    }
}
