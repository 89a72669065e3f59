using System.ComponentModel.DataAnnotations;

namespace Ams.Features.Register;

public sealed class Request
{
    public string Username { get; set; } = "";
    [StringLength(Validator.MaxPasswordLength, MinimumLength = Validator.MinPasswordLength)]
    public string Password { get; set; } = "";
    [StringLength(Validator.MaxDisplayNameLength, MinimumLength = 1)]
    public string? DisplayName { get; set; }
    /// <summary>With <c>Registration:Mode=invite</c>: the code from <c>Ams admin invite</c>; ignored otherwise.</summary>
    public string? Invite { get; set; }
}

public sealed record Response(string Id, string Username, string DisplayName);
