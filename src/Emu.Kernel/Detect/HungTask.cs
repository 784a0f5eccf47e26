// Mirrors: kernel/hung_task.c (v4.4): khungtaskd's watchdog(), check_hung_uninterruptible_tasks() and
// check_hung_task(), with the sysctls hung_task_timeout_secs, hung_task_warnings and hung_task_panic.
//
// Model: khungtaskd is an emulated kernel thread that sleeps for the timeout (interruptibly, so it is never
// reported itself), then walks the task list. A task is hung when it is in TASK_UNINTERRUPTIBLE (not TASK_IDLE,
// not interruptible), has switched at least once, and its switch count has not moved since the previous scan:
// so it is reported between one and two timeouts after it blocked, as in the kernel. Each report is the
// kernel's: "INFO: task NAME:PID blocked for more than N seconds.", the taint and release line, the
// hung_task_timeout_secs hint, sched_show_task() (TaskDump) and the lockdep listing of the locks it holds.
// hung_task_warnings counts down with every report and stops them at 0 (-1: unlimited). Changing a setting
// wakes khungtaskd so the new timeout takes effect at once, as proc_dohung_task_timeout_secs() does.
// Differs: times are in milliseconds (default 2 s instead of 120 s). A task is reported once per stuck
// period (v4.4 repeats the report every scan while warnings last). HungTaskCheckIntervalMs adds the later
// kernels' hung_task_check_interval_secs: with a scan interval shorter than the timeout, a task is reported
// once it has slept for the timeout (its exact sleep start is known). hung_task_panic raises Panicked instead
// of stopping the machine; khungtaskd then stops reporting, as after a real panic. Each wake-up also runs the
// wait-for graph's Scan, when one is attached, for cycles that closed without a sleep.
using System.Globalization;
using System.Runtime.InteropServices;

namespace Emu.Kernel;

/// <summary>One hung-task report.</summary>
/// <param name="Task">The hung task.</param>
/// <param name="Comm">Its name at report time.</param>
/// <param name="Pid">Its pid.</param>
/// <param name="BlockedForMs">How long it had been asleep when reported.</param>
/// <param name="ReportedAtMs">Environment.TickCount64 at report time.</param>
/// <param name="Workqueue">The "Workqueue:" text for a worker running a work item, else null.</param>
/// <param name="Frames">Its call trace, innermost first.</param>
/// <param name="Locks">The locks it held.</param>
/// <param name="Lines">The report as printed to the kernel log.</param>
public sealed record HungTaskReport(
    EmuTask Task,
    string Comm,
    int Pid,
    long BlockedForMs,
    long ReportedAtMs,
    string? Workqueue,
    IReadOnlyList<string> Frames,
    IReadOnlyList<HeldLock> Locks,
    IReadOnlyList<string> Lines)
{
    /// <summary>The report's lines joined with '\n'.</summary>
    public string Text => string.Join('\n', Lines);
}

/// <summary>khungtaskd: reports tasks stuck in uninterruptible sleep, as kernel/hung_task.c does.</summary>
public sealed class HungTaskDetector : IDisposable
{
    /// <summary>Default hung-task timeout: 2 s (the kernel's default is 120 s).</summary>
    public const long DefaultHungTaskTimeoutMs = 2000;

    /// <summary>Default number of reports before khungtaskd falls silent (hung_task_warnings).</summary>
    public const int DefaultHungTaskWarnings = 10;

    /// <summary>Default kernel release printed after the taint state.</summary>
    public const string DefaultKernelRelease = "4.4.0-emu";

    private readonly Lock _lock = new();
    private readonly List<HungTaskReport> _reports = new();          // L: _lock
    private readonly Dictionary<EmuTask, Tracked> _tracked = new();  // khungtaskd only: t->last_switch_count
    private EmuTask? _task;                                          // L: _lock
    private long _timeoutMs;                                         // Volatile
    private long _checkIntervalMs;                                   // Volatile
    private int _warnings;                                           // Volatile; decremented by khungtaskd only
    private volatile bool _panic;
    private volatile bool _didPanic;
    private string _release = DefaultKernelRelease;                  // Volatile
    private DeadlockDetector? _waitForGraph;                         // Volatile
    private long _scans;                                             // Interlocked
    private long _reportsEmitted;                                    // Interlocked
    private long _generation;                                        // khungtaskd only

    /// <param name="hungTaskTimeoutMs">hung_task_timeout_secs, in ms; 0 disables the checks.</param>
    public HungTaskDetector(long hungTaskTimeoutMs = DefaultHungTaskTimeoutMs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(hungTaskTimeoutMs);
        _timeoutMs = hungTaskTimeoutMs;
        _warnings = DefaultHungTaskWarnings;
        SchedMetrics.Publish();
    }

    /// <summary>
    /// Raised after each report is printed, with the task and the report text. Runs on khungtaskd: handlers must
    /// not block for long.
    /// </summary>
    public event Action<EmuTask, string>? TaskHung;

    /// <summary>Raised (on khungtaskd) instead of panic() when <see cref="HungTaskPanic"/> is set, with the panic message.</summary>
    public event Action<string>? Panicked;

    /// <summary>hung_task_timeout_secs in ms: how long a task must be stuck to be reported; 0 disables the checks.</summary>
    public long HungTaskTimeoutMs
    {
        get => Volatile.Read(ref _timeoutMs);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Volatile.Write(ref _timeoutMs, value);
            WakeKhungtaskd();
        }
    }

    /// <summary>hung_task_check_interval_secs in ms (later kernels): how often khungtaskd scans; 0 means every timeout.</summary>
    public long HungTaskCheckIntervalMs
    {
        get => Volatile.Read(ref _checkIntervalMs);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Volatile.Write(ref _checkIntervalMs, value);
            WakeKhungtaskd();
        }
    }

    /// <summary>hung_task_warnings: reports left before khungtaskd falls silent; -1 for unlimited.</summary>
    public int HungTaskWarnings
    {
        get => Volatile.Read(ref _warnings);
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, -1);
            Volatile.Write(ref _warnings, value);
        }
    }

    /// <summary>hung_task_panic: "panic" after the first report (raise <see cref="Panicked"/>).</summary>
    public bool HungTaskPanic
    {
        get => _panic;
        set => _panic = value;
    }

    /// <summary>Release string of the taint line ("      Not tainted 4.4.0-emu #1"); e.g. name the mode here.</summary>
    public string KernelRelease
    {
        get => Volatile.Read(ref _release);
        set => Volatile.Write(ref _release, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>A wait-for graph khungtaskd scans on every wake-up (for cycles closed without a sleep), or null.</summary>
    public DeadlockDetector? WaitForGraph
    {
        get => Volatile.Read(ref _waitForGraph);
        set => Volatile.Write(ref _waitForGraph, value);
    }

    /// <summary>Whether a report "panicked" (<see cref="HungTaskPanic"/>); no report follows a panic.</summary>
    public bool PanicTriggered => _didPanic;

    /// <summary>The khungtaskd task while running, else null.</summary>
    public EmuTask? Task
    {
        get
        {
            lock (_lock)
            {
                return _task;
            }
        }
    }

    /// <summary>Scans of the task list completed so far.</summary>
    public long ScanCount => Interlocked.Read(ref _scans);

    /// <summary>Hung-task reports printed so far.</summary>
    public long ReportsEmitted => Interlocked.Read(ref _reportsEmitted);

    /// <summary>Every report printed so far, oldest first.</summary>
    public HungTaskReport[] Reports
    {
        get
        {
            lock (_lock)
            {
                return _reports.ToArray();
            }
        }
    }

    /// <summary>hung_task_init(): starts khungtaskd.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_task is not null)
            {
                ThrowHelper.ThrowInvalidOperation("khungtaskd is already running.");
            }

            _task = new EmuTask("khungtaskd", Watchdog, parentPid: 2) { Flags = TaskFlags.Kthread };
            _task.Start();
        }
    }

    /// <summary>Stops khungtaskd and waits for it to exit (kthread_stop). Idempotent.</summary>
    public void Stop()
    {
        EmuTask? task;
        lock (_lock)
        {
            task = _task;
            _task = null;
        }

        task?.KthreadStop();
    }

    /// <inheritdoc />
    public void Dispose() => Stop();

    // watchdog(): sleep a check interval, scan, repeat. A wake-up before the interval ends (a setting changed,
    // or kthread_stop) starts a new interval with the new settings.
    private void Watchdog()
    {
        EmuTask self = EmuTask.CurrentOrThrow;
        using KFrame kthread = self.Enter("kthread");
        using KFrame watchdog = self.Enter("watchdog");
        while (true)
        {
            long timeoutMs = HungTaskTimeoutMs;
            long intervalMs = HungTaskCheckIntervalMs;
            long sleepMs = timeoutMs == 0 ? Sched.MaxScheduleTimeout : intervalMs == 0 ? timeoutMs : Math.Min(intervalMs, timeoutMs);
            Sched.SetCurrentState(TaskState.Interruptible);
            if (self.KthreadShouldStop)
            {
                Sched.SetCurrentState(TaskState.Running);
                return;
            }

            if (Sched.ScheduleTimeout(sleepMs) != 0)
            {
                continue;
            }

            WaitForGraph?.Scan();
            CheckHungUninterruptibleTasks(timeoutMs);
        }
    }

    private void CheckHungUninterruptibleTasks(long timeoutMs)
    {
        if (!_didPanic)
        {
            long now = Environment.TickCount64;
            long generation = ++_generation;
            foreach (EmuTask task in TaskList.Snapshot())
            {
                // TASK_UNINTERRUPTIBLE exactly: TASK_IDLE and TASK_KILLABLE sleepers are not hung.
                if (task.State == TaskState.Uninterruptible)
                {
                    CheckHungTask(task, timeoutMs, now, generation);
                    if (_didPanic)
                    {
                        break; // panic() does not return
                    }
                }
            }

            ForgetUntracked(generation);
        }

        Interlocked.Increment(ref _scans);
    }

    private void CheckHungTask(EmuTask task, long timeoutMs, long now, long generation)
    {
        long switchCount = task.Nvcsw;
        if (switchCount == 0)
        {
            return; // never ran and slept: just created
        }

        ref Tracked tracked = ref CollectionsMarshal.GetValueRefOrAddDefault(_tracked, task, out bool exists);
        tracked.Generation = generation;
        if (!exists || tracked.LastSwitchCount != switchCount)
        {
            tracked.LastSwitchCount = switchCount;
            return;
        }

        long blockedForMs = now - task.SleepStartMs;
        if (tracked.ReportedSwitchCount == switchCount || blockedForMs < timeoutMs)
        {
            return;
        }

        int warnings = Volatile.Read(ref _warnings);
        if (warnings == 0)
        {
            return;
        }

        if (warnings > 0)
        {
            Volatile.Write(ref _warnings, warnings - 1);
        }

        tracked.ReportedSwitchCount = switchCount;
        HungTaskReport report = BuildReport(task, timeoutMs, blockedForMs, now);
        Klog.PrintkLines(report.Lines);
        lock (_lock)
        {
            _reports.Add(report);
        }

        KernelTrace.HungTaskReported(report);
        Interlocked.Increment(ref _reportsEmitted);
        SchedMetrics.NoteHungTask();
        Raise(TaskHung, task, report.Text);
        if (_panic)
        {
            const string message = "hung_task: blocked tasks";
            _didPanic = true;
            Klog.Printk("Kernel panic - not syncing: " + message);
            Raise(Panicked, message);
        }
    }

    // A failing handler is reported as a BUG rather than killing khungtaskd.
    private static void Raise<T1, T2>(Action<T1, T2>? handler, T1 arg1, T2 arg2)
    {
        try
        {
            handler?.Invoke(arg1, arg2);
        }
        catch (Exception e)
        {
            Klog.Bug($"BUG: hung-task handler failed: {e.GetType().Name}: {e.Message}", null);
        }
    }

    private static void Raise<T>(Action<T>? handler, T arg)
    {
        try
        {
            handler?.Invoke(arg);
        }
        catch (Exception e)
        {
            Klog.Bug($"BUG: hung-task handler failed: {e.GetType().Name}: {e.Message}", null);
        }
    }

    private HungTaskReport BuildReport(EmuTask task, long timeoutMs, long blockedForMs, long now)
    {
        var lines = new List<string>
        {
            $"INFO: task {task.Comm}:{task.Pid} blocked for more than {FormatSeconds(timeoutMs)} seconds.",
            $"      {Klog.PrintTainted()} {KernelRelease} #1",
            "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
        };
        TaskDump.SchedShowTask(task, lines);
        lines.AddRange(HeldLocks.Format(task).Split('\n'));
        return new HungTaskReport(
            task,
            task.Comm,
            task.Pid,
            blockedForMs,
            now,
            TaskDump.PrintWorkerInfo(task),
            task.Frames,
            HeldLocks.Snapshot(task),
            lines.ToArray());
    }

    // Tasks not seen in TASK_UNINTERRUPTIBLE this scan start afresh when next seen there.
    private void ForgetUntracked(long generation)
    {
        List<EmuTask>? stale = null;
        foreach (KeyValuePair<EmuTask, Tracked> entry in _tracked)
        {
            if (entry.Value.Generation != generation)
            {
                (stale ??= new List<EmuTask>()).Add(entry.Key);
            }
        }

        if (stale is not null)
        {
            foreach (EmuTask task in stale)
            {
                _tracked.Remove(task);
            }
        }
    }

    private void WakeKhungtaskd()
    {
        EmuTask? task = Task;
        if (task is not null)
        {
            Sched.WakeUpProcess(task);
        }
    }

    // The kernel prints whole seconds; Emu's sub-second test timeouts print as decimals ("0.25 seconds").
    private static string FormatSeconds(long ms) =>
        ms % 1000 == 0
            ? (ms / 1000).ToString(CultureInfo.InvariantCulture)
            : (ms / 1000.0).ToString("0.###", CultureInfo.InvariantCulture);

    // Per-task scan state (task_struct->last_switch_count), kept by khungtaskd.
    private struct Tracked
    {
        public long LastSwitchCount;     // switch count seen by the last scan
        public long ReportedSwitchCount; // switch count of the sleep already reported; 0 for none
        public long Generation;          // the last scan that saw the task in TASK_UNINTERRUPTIBLE
    }
}
