using System.ComponentModel.DataAnnotations;

namespace Ams.Features.AccessTokens;

public sealed class CreateRequest
{
    [StringLength(Validator.MaxNameLength, MinimumLength = 1)]
    public string Name { get; set; } = "";
    /// <summary>1..365; null: the token never expires.</summary>
    public int? ExpiresInDays { get; set; }
    /// <summary>The account's password, asked again: a token outlives every session, so a stolen session alone cannot make one.</summary>
    public string Password { get; set; } = "";
}

/// <summary>The token, shown this once.</summary>
public sealed record CreateResponse(string Id, string Name, string Token, DateTime CreatedAt, DateTime? ExpiresAt);

public sealed record TokenView(string Id, string Name, DateTime CreatedAt, DateTime? ExpiresAt, DateTime? LastUsedAt);
