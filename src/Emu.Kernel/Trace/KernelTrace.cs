// Mirrors: the kernel's static tracepoints (include/trace/events/sched.h sched_switch / sched_wakeup,
// workqueue.h workqueue_execute_start / _end, block.h block_rq_complete) feeding the ftrace ring buffer.
//
// Model: a tracepoint is a static key: with tracing off, each one is a single load of s_session and a branch
// not taken, inlined into the caller; the recording side is a separate non-inlined method. With tracing on, an
// event is one fixed-size entry in the calling thread's ring (TraceRing): a clock read and a few stores, no
// formatting, and no allocation but the ring's own doubling while it grows to size; names (resource
// descriptions, work function names, reports) are kept as references and resolved when the trace is written
// (TraceEventWriter). schedule() calls the sched_switch pair around the park, with the state the task set before
// it checked for a wake-up (read later, a waker may already have reset it to TASK_RUNNING); try_to_wake_up()
// records sched_wakeup on the waker's ring, so the writer can say who ended each sleep. A deadlock or hung-task
// report records an instant event.
// Differs: the kernel's sched_switch names the next task too; Emu has no CPUs to switch on, so a switch is the
// sleeping task's own "sleep" and "run again" pair. block_rq_complete carries the request's submission time, so
// one entry gives the whole slice (the kernel pairs block_rq_issue with block_rq_complete).
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>Emu's tracepoints: cheap when tracing is off, lock-free per-thread entries when a <see cref="TraceSession"/> runs.</summary>
public static class KernelTrace
{
    private static readonly double s_nsPerTick = 1e9 / Stopwatch.Frequency;
    private static readonly bool s_ticksAreNs = Stopwatch.Frequency == 1_000_000_000;

    private static volatile TraceSession? s_session;

    [ThreadStatic]
    private static TraceRing? t_ring;

    [ThreadStatic]
    private static List<EmuTask>? t_holders;

    /// <summary>Whether a trace session is recording.</summary>
    public static bool Enabled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => s_session is not null;
    }

    /// <summary>
    /// The trace clock in nanoseconds: monotonic, from Stopwatch, the same clock as the block layer's
    /// ktime_get_ns(), so request times it passes in need no conversion.
    /// </summary>
    public static long NowNs()
    {
        long ticks = Stopwatch.GetTimestamp();
        return s_ticksAreNs ? ticks : (long)(ticks * s_nsPerTick);
    }

    /// <summary>
    /// block_rq_complete: a request of <paramref name="diskName"/>'s hardware queue <paramref name="hwQueue"/>
    /// finished. Call from the completion path with the request's fields; free when tracing is off.
    /// </summary>
    /// <param name="diskName">The disk (a stable string: it is kept, not copied).</param>
    /// <param name="hwQueue">queue_num of the hardware queue.</param>
    /// <param name="op">REQ_OP_*: 0 read, 1 write, 2 flush.</param>
    /// <param name="sector">First sector.</param>
    /// <param name="bytes">Data length.</param>
    /// <param name="submitNs">When the request was made from its first bio (<see cref="NowNs"/>'s clock).</param>
    /// <param name="completeNs">When it completed (same clock).</param>
    /// <param name="error">0 or -errno.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void BlockRqComplete(string diskName, int hwQueue, int op, long sector, uint bytes, long submitNs, long completeNs, int error)
    {
        TraceSession? session = s_session;
        if (session is not null)
        {
            RecordRqComplete(session, diskName, hwQueue, op, sector, bytes, submitNs, completeNs, error);
        }
    }

    /// <summary>workqueue_execute_start: the calling worker starts <paramref name="funcName"/> of <paramref name="wq"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void WorkqueueExecuteStart(Workqueue wq, string? funcName)
    {
        TraceSession? session = s_session;
        if (session is not null)
        {
            RecordWork(session, TraceEventKind.WorkStart, wq, funcName);
        }
    }

    /// <summary>workqueue_execute_end: the calling worker's work function returned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void WorkqueueExecuteEnd()
    {
        TraceSession? session = s_session;
        if (session is not null)
        {
            RecordWork(session, TraceEventKind.WorkEnd, null, null);
        }
    }

    /// <summary>The wait-for graph reported <paramref name="report"/>.</summary>
    internal static void DeadlockFound(DeadlockReport report)
    {
        TraceSession? session = s_session;
        if (session is not null)
        {
            RecordReport(session, TraceEventKind.Deadlock, report);
        }
    }

    /// <summary>khungtaskd reported <paramref name="report"/>.</summary>
    internal static void HungTaskReported(HungTaskReport report)
    {
        TraceSession? session = s_session;
        if (session is not null)
        {
            RecordReport(session, TraceEventKind.HungTask, report);
        }
    }

    // Makes session the recording one; false if another records already.
    internal static bool TryActivate(TraceSession session) =>
        Interlocked.CompareExchange(ref s_session, session, null) is null;

    internal static void Deactivate(TraceSession session) =>
        Interlocked.CompareExchange(ref s_session, null, session);

    /// <summary>
    /// sched_switch, prev side: the current task blocks in schedule() in <paramref name="prevState"/> (read before
    /// the switch: a waker may already have made it TASK_RUNNING again).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void SchedSwitchOut(EmuTask task, TaskState prevState)
    {
        TraceSession? session = s_session;
        if (session is not null)
        {
            RecordSleepStart(session, task, prevState);
        }
    }

    /// <summary>sched_switch, next side: the current task runs again after blocking.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void SchedSwitchIn(EmuTask task)
    {
        TraceSession? session = s_session;
        if (session is not null)
        {
            RecordSleepEnd(session, task);
        }
    }

    /// <summary>
    /// The time of a wake-up about to be tried, or 0 with tracing off: read before the task is made runnable, as
    /// the woken task may record that it runs again before its waker gets to record the wake-up.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static long WakeupClock() => s_session is null ? 0 : NowNs();

    /// <summary>
    /// sched_wakeup: the calling thread (a task, irq context or a host thread) woke <paramref name="task"/> at
    /// <paramref name="wakeNs"/> (from <see cref="WakeupClock"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void SchedWakeup(EmuTask task, long wakeNs)
    {
        TraceSession? session = s_session;
        if (session is not null && wakeNs != 0)
        {
            RecordWakeup(session, task, wakeNs);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordSleepStart(TraceSession session, EmuTask task, TaskState prevState)
    {
        IWaitResource? resource = task.WaitingOn;
        EmuTask? holder = null;
        int holders = 0;
        if (resource is not null)
        {
            List<EmuTask> list = t_holders ??= new List<EmuTask>(4);
            list.Clear();
            resource.AppendHolders(list);
            holders = list.Count;
            holder = holders > 0 ? list[0] : null;
            list.Clear();
        }

        TraceRing ring = RingFor(session, task);
        ref TraceRecord r = ref ring.Reserve();
        r = default;
        r.Kind = TraceEventKind.SleepStart;
        r.TimeNs = NowNs();
        r.Subject = resource;
        r.Other = holder;
        r.Arg1 = holders;
        r.Arg2 = (int)prevState;
        r.Function = InnermostCaller(task);
        ring.Commit();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordSleepEnd(TraceSession session, EmuTask task)
    {
        TraceRing ring = RingFor(session, task);
        ref TraceRecord r = ref ring.Reserve();
        r = default;
        r.Kind = TraceEventKind.SleepEnd;
        r.TimeNs = NowNs();
        ring.Commit();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordWakeup(TraceSession session, EmuTask task, long wakeNs)
    {
        TraceRing ring = RingFor(session, EmuTask.Current);
        ref TraceRecord r = ref ring.Reserve();
        r = default;
        r.Kind = TraceEventKind.Wakeup;
        r.TimeNs = wakeNs;
        r.Subject = task;
        ring.Commit();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordWork(TraceSession session, TraceEventKind kind, Workqueue? wq, string? funcName)
    {
        TraceRing ring = RingFor(session, EmuTask.Current);
        ref TraceRecord r = ref ring.Reserve();
        r = default;
        r.Kind = kind;
        r.TimeNs = NowNs();
        r.Subject = wq;
        r.Other = funcName;
        ring.Commit();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordRqComplete(TraceSession session, string diskName, int hwQueue, int op, long sector, uint bytes, long submitNs, long completeNs, int error)
    {
        TraceRing ring = RingFor(session, EmuTask.Current);
        ref TraceRecord r = ref ring.Reserve();
        r = default;
        r.Kind = TraceEventKind.RqComplete;
        r.TimeNs = completeNs;
        r.Subject = diskName;
        r.Arg0 = submitNs;
        r.Arg1 = sector;
        r.Arg2 = (int)bytes;
        r.Error = error;
        r.Queue = (short)hwQueue;
        r.Op = (byte)op;
        ring.Commit();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordReport(TraceSession session, TraceEventKind kind, object report)
    {
        TraceRing ring = RingFor(session, EmuTask.Current);
        ref TraceRecord r = ref ring.Reserve();
        r = default;
        r.Kind = kind;
        r.TimeNs = NowNs();
        r.Subject = report;
        ring.Commit();
    }

    // The calling thread's ring for session; a new one when the thread starts recording for this session or
    // (an adopting host thread) as another task.
    private static TraceRing RingFor(TraceSession session, EmuTask? task)
    {
        TraceRing? ring = t_ring;
        if (ring is null || ring.Session != session || ring.Task != task)
        {
            ring = session.NewRing(task);
            t_ring = ring;
        }

        return ring;
    }

    // The innermost shadow-stack function that is not part of the sleeping machinery: "__lock_page" rather than
    // "schedule", "io_schedule_timeout" or "bit_wait_io".
    private static string? InnermostCaller(EmuTask task)
    {
        for (int i = 0; ; i++)
        {
            string? frame = task.FrameFromTop(i);
            if (frame is null || !IsSleepMachinery(frame))
            {
                return frame;
            }
        }
    }

    private static bool IsSleepMachinery(string frame) => frame switch
    {
        "schedule" or "schedule_timeout" or "io_schedule" or "io_schedule_timeout" or "schedule_preempt_disabled"
            or "bit_wait" or "bit_wait_io" or "__wait_on_bit" or "__wait_on_bit_lock" or "out_of_line_wait_on_bit"
            or "out_of_line_wait_on_bit_lock" or "__wait_for_common" => true,
        _ => false,
    };
}
