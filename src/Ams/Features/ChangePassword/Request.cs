using System.ComponentModel.DataAnnotations;

namespace Ams.Features.ChangePassword;

public sealed class Request
{
    public string CurrentPassword { get; set; } = "";
    [StringLength(Register.Validator.MaxPasswordLength, MinimumLength = Register.Validator.MinPasswordLength)]
    public string NewPassword { get; set; } = "";
}
