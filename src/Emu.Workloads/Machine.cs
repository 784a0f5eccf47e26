// The emulated machine a workload runs on: the kernel log, khungtaskd, Emu's wait-for graph, and one btrfs
// mounted on the run's backing store. Kernel entry points run on emulated tasks (mount and umount get short
// tasks of their own); the host thread that drives a run only starts tasks and waits for them from outside.
// A run that ends in a deadlock is abandoned, not shut down: its tasks can never be woken, so nothing may wait
// for them (no unmount, no workqueue or disk teardown); the detectors are stopped and the process exits with
// the deadlocked threads (background threads) still blocked, as a hung kernel would stay.
using Emu.Btrfs;
using Emu.Kernel;
using Emu.Workloads.Backing;

namespace Emu.Workloads;

/// <summary>How to boot a <see cref="Machine"/>.</summary>
public sealed record MachineOptions
{
    /// <summary>Which lock_extent_direct() the filesystem runs.</summary>
    public BtrfsMode Mode { get; init; } = BtrfsMode.Unpatched;

    /// <summary>hung_task_timeout_secs, in ms.</summary>
    public long HungTaskTimeoutMs { get; init; } = HungTaskDetector.DefaultHungTaskTimeoutMs;

    /// <summary>How often khungtaskd scans (hung_task_check_interval_secs), in ms; at most the timeout.</summary>
    public long HungTaskCheckIntervalMs { get; init; } = 100;

    /// <summary>Where kernel log lines are echoed as they are logged (the console), or null.</summary>
    public TextWriter? Console { get; init; }

    /// <summary>The mount options; Mode and Format are set from this record.</summary>
    public BtrfsMountOptions Mount { get; init; } = new();
}

/// <summary>A booted emulated kernel with one mounted Emu btrfs.</summary>
public sealed class Machine
{
    private Machine(KernelLog log, DeadlockDetector graph, HungTaskDetector khungtaskd, BtrfsFs fs, BackingStore store, long bootedAtMs)
    {
        Log = log;
        WaitForGraph = graph;
        Khungtaskd = khungtaskd;
        Fs = fs;
        Store = store;
        BootedAtMs = bootedAtMs;
    }

    /// <summary>The kernel log (also installed as <see cref="Klog.Sink"/>).</summary>
    public KernelLog Log { get; }

    /// <summary>The wait-for graph, installed on every sleep.</summary>
    public DeadlockDetector WaitForGraph { get; }

    /// <summary>khungtaskd.</summary>
    public HungTaskDetector Khungtaskd { get; }

    /// <summary>The mounted filesystem.</summary>
    public BtrfsFs Fs { get; }

    /// <summary>The backing store under it.</summary>
    public BackingStore Store { get; }

    /// <summary>Environment.TickCount64 when the boot started (the clock of detector timestamps).</summary>
    public long BootedAtMs { get; }

    /// <summary>
    /// Boots on <paramref name="store"/>: installs the kernel log and the detectors, starts khungtaskd, and
    /// formats and mounts the filesystem. Call from a host thread.
    /// </summary>
    public static Machine Boot(BackingStore store, MachineOptions options)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        long booted = Environment.TickCount64;
        var log = new KernelLog(options.Console);
        Klog.Sink = log;
        var graph = new DeadlockDetector();
        graph.Install();
        var khungtaskd = new HungTaskDetector(options.HungTaskTimeoutMs)
        {
            HungTaskCheckIntervalMs = Math.Min(options.HungTaskCheckIntervalMs, options.HungTaskTimeoutMs),
            HungTaskWarnings = -1,
            KernelRelease = options.Mode == BtrfsMode.Unpatched ? "4.4.0-emu" : "4.6.0-emu",
            WaitForGraph = graph,
        };
        khungtaskd.Start();
        BtrfsFs? fs = null;
        BtrfsMountOptions mount = options.Mount with { Mode = options.Mode, Format = true };
        RunTask("mount", () => fs = BtrfsFs.Mount(store.Disk, mount));
        return new Machine(log, graph, khungtaskd, fs!, store, booted);
    }

    /// <summary>
    /// Runs <paramref name="body"/> on a new emulated task named <paramref name="comm"/> and waits for it from the
    /// host thread; an exception escaping the task is rethrown.
    /// </summary>
    public static void RunTask(string comm, Action body)
    {
        EmuTask task = EmuTask.Run(comm, body);
        task.Join();
        if (task.Exception is { } e)
        {
            throw new InvalidOperationException($"{comm} failed: {e.Message}", e);
        }
    }

    /// <summary>Unmounts (sync, stop the flusher and workers), stops the detectors and releases the disk.</summary>
    public void Shutdown()
    {
        RunTask("umount", Fs.Unmount);
        StopDetectors();
        Store.Dispose();
    }

    /// <summary>
    /// Leaves a deadlocked machine as it is: stops khungtaskd and the wait-for graph, and nothing else (its tasks
    /// and their filesystem stay blocked until the process exits).
    /// </summary>
    public void Abandon() => StopDetectors();

    private void StopDetectors()
    {
        Khungtaskd.Stop();
        WaitForGraph.Uninstall();
    }
}
