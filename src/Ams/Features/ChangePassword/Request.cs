namespace Ams.Features.ChangePassword;

public sealed class Request
{
    public string CurrentPassword { get; set; } = "";
    public string NewPassword { get; set; } = "";
}
