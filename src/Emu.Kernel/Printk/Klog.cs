// Mirrors: kernel/printk/printk.c (v4.4), the part every emulated subsystem calls: printk() into one sink,
// and the bug counter the reports feed.
//
// Model: kernel code calls Klog.Printk with one complete line (or several separated by '\n'); reports that span
// many lines (a BUG with its call trace, a hung-task report, a deadlock report) go through PrintkLines so no
// other task's line lands in the middle. The sink is process-wide, as the kernel log is; it defaults to an
// in-memory KernelLog (the ring buffer, KernelLog.cs) and the CLI replaces it with one mirrored to stderr.
// Differs: no log levels and no console drivers; a line is a string, written whole.
namespace Emu.Kernel;

/// <summary>Where printk lines go.</summary>
public interface IKernelLog
{
    /// <summary>Appends one line (no trailing newline). Called from any task, including irq context.</summary>
    void Printk(string line);

    /// <summary>
    /// Appends several lines as one block: a sink that can should keep other lines from interleaving.
    /// The default appends them one by one.
    /// </summary>
    void PrintkLines(IReadOnlyList<string> lines)
    {
        for (int i = 0; i < lines.Count; i++)
        {
            Printk(lines[i]);
        }
    }
}

/// <summary>printk() and the report helpers built on it.</summary>
public static class Klog
{
    private static IKernelLog s_sink = new KernelLog();
    private static long s_bugsReported;

    /// <summary>The process-wide kernel log. Defaults to an in-memory <see cref="KernelLog"/>.</summary>
    public static IKernelLog Sink
    {
        get => Volatile.Read(ref s_sink);
        set => Volatile.Write(ref s_sink, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>Number of BUG reports printed so far (scheduling while atomic, locks held at exit, ...).</summary>
    public static long BugsReported => Interlocked.Read(ref s_bugsReported);

    /// <summary>
    /// print_tainted() (kernel/panic.c): "Not tainted", or once a BUG was reported (each of which taints the
    /// kernel with TAINT_WARN, as __schedule_bug does) "Tainted: G        W      ".
    /// </summary>
    public static string PrintTainted() =>
        BugsReported == 0 ? "Not tainted" : "Tainted: G        W      ";

    /// <summary>printk(): logs one line (text containing '\n' is logged as several lines).</summary>
    public static void Printk(string line) => Sink.Printk(line);

    /// <summary>Logs several lines as one block that other tasks' lines do not interleave with.</summary>
    public static void PrintkLines(IReadOnlyList<string> lines) => Sink.PrintkLines(lines);

    /// <summary>
    /// Prints a "BUG: ..." headline followed by the task's call trace and counts it in <see cref="BugsReported"/>.
    /// </summary>
    public static void Bug(string headline, EmuTask? task)
    {
        Interlocked.Increment(ref s_bugsReported);
        var lines = new List<string> { headline };
        if (task is not null)
        {
            AppendStack(task, lines);
        }

        PrintkLines(lines);
    }

    /// <summary>Counts a BUG whose report was already printed (repeats of the same offence).</summary>
    public static void CountBug() => Interlocked.Increment(ref s_bugsReported);

    /// <summary>dump_stack() for an emulated task: "Call Trace:" then its shadow stack, innermost first.</summary>
    public static void DumpStack(EmuTask task)
    {
        var lines = new List<string>();
        AppendStack(task, lines);
        PrintkLines(lines);
    }

    private static void AppendStack(EmuTask task, List<string> lines)
    {
        if (task == EmuTask.Current)
        {
            lines.Add($"CPU: {Thread.GetCurrentProcessorId()} PID: {task.Pid} Comm: {task.Comm}");
        }

        lines.Add("Call Trace:");
        foreach (string frame in task.Frames)
        {
            lines.Add(" " + frame);
        }
    }
}
