namespace Ams.Features.Attachments;

/// <summary>The <c>Attachments</c> section (README "Attachments").</summary>
public sealed class AttachmentOptions
{
    /// <summary>The largest file: 413 as soon as an upload passes it.</summary>
    public long MaxBytes { get; set; } = 25L * 1024 * 1024;

    /// <summary>What one user's files (sent and unsent) may occupy together; past it an upload gets 413 "Storage quota exceeded".</summary>
    public long QuotaBytes { get; set; } = 1024L * 1024 * 1024;

    /// <summary>Uploads per user per <see cref="UploadWindow"/>; one more gets 429 with Retry-After.</summary>
    public int MaxUploads { get; set; } = 60;
    public TimeSpan UploadWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long an upload that was never sent is kept.</summary>
    public TimeSpan UnsentLifetime { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How often the sweeper removes expired uploads (and chunks left by interrupted deletes).</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(10);
}
