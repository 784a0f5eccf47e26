// The scheduler's System.Diagnostics.Metrics instruments, under the meter "Emu.Sched", so dotnet-counters and
// `emu diagnose` can watch tasks pile up in D state before khungtaskd or the wait-for graph says anything.
// Mirrors: the per-state task counts of /proc/loadavg and `ps -eo stat` (nr_running, nr_uninterruptible),
// and the hung-task count of /proc/sys/kernel/hung_task_detect_count (v6.11+).
// Model: the instruments appear when the first khungtaskd is created. Task counts are read from the task list when a listener collects; the report counts are bumped by
// khungtaskd and the wait-for graph when they print a report, a cold path. Counts cover every detector in
// the process.
// Differs: the kernel has no count of deadlock cycles (lockdep stops at the first); Emu's wait-for graph
// reports each distinct cycle once, and that is what is counted.
using System.Diagnostics.Metrics;

namespace Emu.Kernel;

/// <summary>The "Emu.Sched" meter.</summary>
public static class SchedMetrics
{
    /// <summary>The meter's name, for listeners.</summary>
    public const string MeterName = "Emu.Sched";

    private static readonly Meter s_meter = new(MeterName);
    private static long s_hungTasks; // Interlocked
    private static long s_deadlocks; // Interlocked
    private static int s_published;  // Interlocked

    /// <summary>Creates the instruments, once; khungtaskd's creation calls it, so they exist from boot on.</summary>
    public static void Publish()
    {
        if (Interlocked.Exchange(ref s_published, 1) != 0)
        {
            return;
        }

        s_meter.CreateObservableUpDownCounter("emu.sched.tasks", static () => TasksByState(),
            unit: "{task}", description: "Live emulated tasks by state (running, interruptible, uninterruptible = D, idle).");
        s_meter.CreateObservableGauge("emu.sched.uninterruptible.longest", static () => LongestUninterruptibleMs(),
            unit: "ms", description: "How long the task longest in TASK_UNINTERRUPTIBLE has slept (0 when none).");
        s_meter.CreateObservableCounter("emu.sched.hung_tasks", static () => Interlocked.Read(ref s_hungTasks),
            unit: "{report}", description: "Hung-task reports printed by khungtaskd.");
        s_meter.CreateObservableCounter("emu.sched.deadlocks", static () => Interlocked.Read(ref s_deadlocks),
            unit: "{cycle}", description: "Deadlock cycles reported by the wait-for graph.");
    }

    internal static void NoteHungTask() => Interlocked.Increment(ref s_hungTasks);

    internal static void NoteDeadlock() => Interlocked.Increment(ref s_deadlocks);

    private static IEnumerable<Measurement<long>> TasksByState()
    {
        long running = 0, interruptible = 0, uninterruptible = 0, idle = 0;
        foreach (EmuTask task in TaskList.Snapshot())
        {
            switch (task.State)
            {
                case TaskState.Running:
                    running++;
                    break;
                case TaskState.Interruptible:
                    interruptible++;
                    break;
                case TaskState.Uninterruptible:
                    uninterruptible++;
                    break;
                case TaskState.Idle:
                    idle++;
                    break;
            }
        }

        yield return new Measurement<long>(running, new KeyValuePair<string, object?>("state", "running"));
        yield return new Measurement<long>(interruptible, new KeyValuePair<string, object?>("state", "interruptible"));
        yield return new Measurement<long>(uninterruptible, new KeyValuePair<string, object?>("state", "uninterruptible"));
        yield return new Measurement<long>(idle, new KeyValuePair<string, object?>("state", "idle"));
    }

    private static long LongestUninterruptibleMs()
    {
        long now = Environment.TickCount64;
        long longest = 0;
        foreach (EmuTask task in TaskList.Snapshot())
        {
            if (task.State == TaskState.Uninterruptible)
            {
                longest = Math.Max(longest, now - task.SleepStartMs);
            }
        }

        return longest;
    }
}
