// Mirrors: kernel/printk/printk.c (v4.4), only the part every emulated subsystem needs: printk() into one
// sink, and the bug counter the reports feed.
//
// Model: kernel code calls Klog.Printk with one complete line. The sink is process-wide, as the kernel
// log is; Klog.Sink can be replaced (the hung-task detector installs a ring buffer with timestamps).
// Differs: no log levels, no timestamps and no console drivers here; a line is a string, written whole.
namespace Emu.Kernel;

/// <summary>Where printk lines go.</summary>
public interface IKernelLog
{
    /// <summary>Appends one line (no trailing newline). Called from any task, including irq context.</summary>
    void Printk(string line);
}

/// <summary>A kernel log that keeps every line and optionally mirrors it to a writer.</summary>
public sealed class KernelLog : IKernelLog
{
    private readonly Lock _lock = new();
    private readonly List<string> _lines = new(); // L: _lock
    private readonly TextWriter? _mirror;         // I

    /// <param name="mirror">Receives each line as it is logged (e.g. Console.Error); null for none.</param>
    public KernelLog(TextWriter? mirror = null) => _mirror = mirror;

    /// <inheritdoc />
    public void Printk(string line)
    {
        lock (_lock)
        {
            _lines.Add(line);
            _mirror?.WriteLine(line);
        }
    }

    /// <summary>A copy of every line logged so far, oldest first.</summary>
    public string[] Lines
    {
        get
        {
            lock (_lock)
            {
                return _lines.ToArray();
            }
        }
    }

    /// <summary>All lines joined with '\n'.</summary>
    public override string ToString()
    {
        lock (_lock)
        {
            return string.Join('\n', _lines);
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

    /// <summary>printk(): logs one line.</summary>
    public static void Printk(string line) => Sink.Printk(line);

    /// <summary>
    /// Prints a "BUG: ..." headline followed by the task's call trace and counts it in <see cref="BugsReported"/>.
    /// </summary>
    public static void Bug(string headline, EmuTask? task)
    {
        Interlocked.Increment(ref s_bugsReported);
        Printk(headline);
        if (task is not null)
        {
            DumpStack(task);
        }
    }

    /// <summary>Counts a BUG whose report was already printed (repeats of the same offence).</summary>
    public static void CountBug() => Interlocked.Increment(ref s_bugsReported);

    /// <summary>dump_stack() for an emulated task: "Call Trace:" then its shadow stack, innermost first.</summary>
    public static void DumpStack(EmuTask task)
    {
        if (task == EmuTask.Current)
        {
            Printk($"CPU: {Thread.GetCurrentProcessorId()} PID: {task.Pid} Comm: {task.Comm}");
        }
        Printk("Call Trace:");
        foreach (string frame in task.Frames)
        {
            Printk(" " + frame);
        }
    }
}
