namespace Ams.Infrastructure;

public static class Tasks
{
    /// <summary>
    /// For a task nobody awaits: its failure is observed (never an unobserved-task exception)
    /// and otherwise ignored, because something else handles what it means.
    /// </summary>
    public static void IgnoreFailure(this Task task) =>
        task.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
}
