// Mirrors: kernel/sched/core.c (v4.4: schedule, try_to_wake_up, wake_up_process, io_schedule_timeout,
// __schedule_bug) and kernel/time/timer.c (schedule_timeout, msleep).
//
// Model: the kernel's lost-wakeup-free protocol, unchanged. A sleeper sets its state (set_current_state,
// with a full fence), checks its condition, and calls Schedule(); Schedule() returns at once if a waker has
// already set TASK_RUNNING, else parks the thread until one does. try_to_wake_up() moves a task whose state
// matches the wake mask to TASK_RUNNING and unparks it. Schedule() is also the seam for everything that must
// know a task went to sleep: its plugged I/O (sched_submit_work), the switch count and sleep start (hung-task
// detection), the workqueue's concurrency management (wq_worker_sleeping / running), the sleep observer
// (wait-for graph), the tracepoints, and the scheduling-point hook a controlled scheduler can take over.
// Differs: there are no run queues or CPUs to pick; the OS schedules the runnable threads. A task in atomic
// context that calls Schedule() gets the kernel's "BUG: scheduling while atomic" report (printed once per task,
// counted every time) and Schedule() returns with the task running instead of sleeping. Timeouts are in ms.
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>schedule() and try_to_wake_up(): the one sleeping path every emulated wait goes through.</summary>
public static class Sched
{
    /// <summary>Timeout meaning "no timeout". MAX_SCHEDULE_TIMEOUT.</summary>
    public const long MaxScheduleTimeout = long.MaxValue;

    private static Action<SchedPoint>? s_pointHook;
    private static Action<SchedPoint, object?>? s_pointDetailHook;
    private static ISleepObserver? s_sleepObserver;

    /// <summary>Told about every real sleep (hung-task detector, wait-for graph); null for none.</summary>
    public static ISleepObserver? SleepObserver
    {
        get => Volatile.Read(ref s_sleepObserver);
        set => Volatile.Write(ref s_sleepObserver, value);
    }

    /// <summary>
    /// Installs <paramref name="observer"/> beside the observers already installed (they are called in the order
    /// they were added). Safe against concurrent <see cref="AddSleepObserver"/> and <see cref="RemoveSleepObserver"/>.
    /// </summary>
    public static void AddSleepObserver(ISleepObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        ISleepObserver? current;
        do
        {
            current = Volatile.Read(ref s_sleepObserver);
        }
        while (Interlocked.CompareExchange(ref s_sleepObserver, SleepObserverSet.With(current, observer), current) != current);
    }

    /// <summary>Removes an observer installed with <see cref="AddSleepObserver"/> (or set as <see cref="SleepObserver"/>).</summary>
    /// <returns>false if it was not installed.</returns>
    public static bool RemoveSleepObserver(ISleepObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        ISleepObserver? current;
        ISleepObserver? next;
        do
        {
            current = Volatile.Read(ref s_sleepObserver);
            if (!SleepObserverSet.Contains(current, observer))
            {
                return false;
            }

            next = SleepObserverSet.Without(current, observer);
        }
        while (Interlocked.CompareExchange(ref s_sleepObserver, next, current) != current);

        return true;
    }

    /// <summary>
    /// Installs the handler <see cref="Point"/> calls (a controlled scheduler or a test probe), or removes it
    /// with null. Production runs with none.
    /// </summary>
    public static void SetPointHook(Action<SchedPoint>? hook) => Volatile.Write(ref s_pointHook, hook);

    /// <summary>A scheduling point: control may switch to another task here. Free without a hook.</summary>
    public static void Point(SchedPoint point)
    {
        Action<SchedPoint>? hook = Volatile.Read(ref s_pointHook);
        if (hook is not null)
        {
            hook(point);
        }
    }

    /// <summary>
    /// Installs the handler <see cref="Point(SchedPoint, object?)"/> calls with its detail (a scripted
    /// interleaving that must know which page or range a point is about), or removes it with null.
    /// </summary>
    public static void SetPointDetailHook(Action<SchedPoint, object?>? hook) => Volatile.Write(ref s_pointDetailHook, hook);

    /// <summary>Whether a detail hook is installed (callers build a detail object only then).</summary>
    public static bool PointDetailHooked => Volatile.Read(ref s_pointDetailHook) is not null;

    /// <summary>
    /// A scheduling point with a detail (the page, range or ordered extent it is about): calls the detail hook,
    /// then the plain hook. Free without hooks.
    /// </summary>
    public static void Point(SchedPoint point, object? detail)
    {
        Action<SchedPoint, object?>? hook = Volatile.Read(ref s_pointDetailHook);
        if (hook is not null)
        {
            hook(point, detail);
        }

        Point(point);
    }

    /// <summary>set_current_state(): sets the current task's state with a full barrier, before checking the wait condition.</summary>
    public static void SetCurrentState(TaskState state)
    {
        EmuTask? task = EmuTask.Current;
        if (task is null)
        {
            ThrowHelper.ThrowNotATask("set_current_state");
        }

        task.SetStateBarrier(state);
    }

    /// <summary>
    /// schedule(): sleeps until woken if the current task's state is not <see cref="TaskState.Running"/>;
    /// returns at once otherwise.
    /// </summary>
    public static void Schedule() => ScheduleCore(CurrentForSchedule(), MaxScheduleTimeout);

    /// <summary>
    /// schedule_timeout(): like <see cref="Schedule"/>, but the task is woken after <paramref name="timeoutMs"/>
    /// at the latest. The caller sets the state first.
    /// </summary>
    /// <returns>0 if the timeout elapsed, else the ms left (<see cref="MaxScheduleTimeout"/> for no timeout).</returns>
    public static long ScheduleTimeout(long timeoutMs)
    {
        if (timeoutMs < 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(timeoutMs), "schedule_timeout: negative timeout");
        }

        EmuTask task = CurrentForSchedule();
        using KFrame frame = task.Enter("schedule_timeout");
        return ScheduleCore(task, timeoutMs);
    }

    /// <summary>schedule_timeout_uninterruptible().</summary>
    public static long ScheduleTimeoutUninterruptible(long timeoutMs)
    {
        SetCurrentState(TaskState.Uninterruptible);
        return ScheduleTimeout(timeoutMs);
    }

    /// <summary>schedule_timeout_interruptible().</summary>
    public static long ScheduleTimeoutInterruptible(long timeoutMs)
    {
        SetCurrentState(TaskState.Interruptible);
        return ScheduleTimeout(timeoutMs);
    }

    /// <summary>schedule_timeout_idle(): a timed sleep the hung-task detector ignores (TASK_IDLE).</summary>
    public static long ScheduleTimeoutIdle(long timeoutMs)
    {
        SetCurrentState(TaskState.Idle);
        return ScheduleTimeout(timeoutMs);
    }

    /// <summary>io_schedule_timeout(): a sleep accounted as waiting for I/O. The caller sets the state.</summary>
    public static long IoScheduleTimeout(long timeoutMs)
    {
        EmuTask task = CurrentForSchedule();
        using KFrame frame = task.Enter("io_schedule_timeout");
        return ScheduleTimeout(timeoutMs);
    }

    /// <summary>io_schedule() (v4.4: io_schedule_timeout(MAX_SCHEDULE_TIMEOUT)).</summary>
    public static void IoSchedule() => IoScheduleTimeout(MaxScheduleTimeout);

    /// <summary>msleep(): sleeps uninterruptibly for at least <paramref name="ms"/> milliseconds.</summary>
    public static void Msleep(int ms)
    {
        EmuTask task = CurrentForSchedule();
        using KFrame frame = task.Enter("msleep");
        long timeout = (long)ms + 1;
        while (timeout != 0)
        {
            timeout = ScheduleTimeoutUninterruptible(timeout);
        }
    }

    /// <summary>cond_resched(): a voluntary preemption point; never sleeps.</summary>
    public static void CondResched() => Point(SchedPoint.CondResched);

    /// <summary>
    /// try_to_wake_up(): if <paramref name="task"/>'s state matches <paramref name="stateMask"/>, makes it
    /// <see cref="TaskState.Running"/> and unparks it. Safe from any thread, including irq context.
    /// </summary>
    /// <returns>true if the task was woken (it was sleeping in a matching state).</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryToWakeUp(EmuTask task, TaskState stateMask)
    {
        long wakeNs = KernelTrace.WakeupClock();
        if (!task.TryWake((int)stateMask))
        {
            return false;
        }

        KernelTrace.SchedWakeup(task, wakeNs);
        Point(SchedPoint.Wake);
        return true;
    }

    /// <summary>wake_up_process(): wakes a task in any normal sleeping state (TASK_NORMAL).</summary>
    public static bool WakeUpProcess(EmuTask task) => TryToWakeUp(task, TaskState.Normal);

    /// <summary>wake_up_state().</summary>
    public static bool WakeUpState(EmuTask task, TaskState state) => TryToWakeUp(task, state);

    private static EmuTask CurrentForSchedule()
    {
        EmuTask? task = EmuTask.Current;
        if (task is null)
        {
            ThrowHelper.ThrowNotATask("schedule");
        }

        return task;
    }

    private static long ScheduleCore(EmuTask task, long timeoutMs)
    {
        Point(SchedPoint.Schedule);
        TaskState prevState = task.State;
        if (prevState == TaskState.Running)
        {
            // A wake-up arrived between set_current_state and here: no switch, as in __schedule().
            return timeoutMs;
        }

        using KFrame frame = task.Enter("schedule");

        // sched_submit_work(): a task going to sleep must not hold back its plugged I/O, which may be what it is
        // about to wait for. Issuing it may complete it at once and wake the task: then, as in __schedule(), it
        // does not sleep.
        if (task.Plug is { NeedsFlush: true } plug)
        {
            plug.ScheduleFlush();
            if (task.State == TaskState.Running)
            {
                return timeoutMs;
            }
        }

        if (task.InAtomic)
        {
            ScheduleBug(task);
            task.SetStateRelaxed(TaskState.Running);
            return timeoutMs;
        }

        IWorkqueueWorkerHooks? hooks = (task.Flags & TaskFlags.WqWorker) != 0 ? task.WorkerHooks : null;
        hooks?.WqWorkerSleeping(task);
        task.AccountSleep();
        ISleepObserver? observer = SleepObserver;
        observer?.SleepStarted(task);
        KernelTrace.SchedSwitchOut(task, prevState);

        long remaining = task.Park(timeoutMs);

        KernelTrace.SchedSwitchIn(task);
        observer?.SleepEnded(task);
        hooks?.WqWorkerRunning(task);
        return remaining;
    }

    // __schedule_bug(): the report is printed on a task's first offence only, so a wait loop retried in
    // atomic context does not flood the log; every offence is counted.
    private static void ScheduleBug(EmuTask task)
    {
        if (task.NoteScheduleBug())
        {
            Klog.Bug($"BUG: scheduling while atomic: {task.Comm}/{task.Pid}/0x{task.PreemptCount:x8}", task);
        }
        else
        {
            Klog.CountBug();
        }
    }
}
