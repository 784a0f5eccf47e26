// The seams schedule() calls out through: workqueue concurrency management (kernel/workqueue.c
// wq_worker_sleeping / wq_worker_waking_up), the block layer's plug (sched_submit_work ->
// blk_schedule_flush_plug), and the sleep observer used by the hung-task detector and the wait-for graph.
namespace Emu.Kernel;

/// <summary>
/// Implemented by the workqueue: told when one of its workers (a task with <see cref="TaskFlags.WqWorker"/>)
/// goes to sleep in schedule() and when it runs again.
/// </summary>
/// <remarks>
/// Both calls are made by the worker itself and must not sleep. Emu differs from v4.4, which calls
/// wq_worker_waking_up() from the waker's try_to_wake_up(); Emu calls <see cref="WqWorkerRunning"/> from the
/// woken worker as it leaves schedule(), as kernels since v5.x do (wq_worker_running), so wakers in irq
/// context never enter workqueue code.
/// </remarks>
public interface IWorkqueueWorkerHooks
{
    /// <summary>wq_worker_sleeping(): the worker is about to sleep.</summary>
    void WqWorkerSleeping(EmuTask task);

    /// <summary>wq_worker_running(): the worker slept and is running again.</summary>
    void WqWorkerRunning(EmuTask task);

    /// <summary>
    /// print_worker_info(): the text after "Workqueue: " for reports, e.g.
    /// "btrfs-flush_delalloc btrfs_flush_delalloc_helper", or null when the worker runs no work item.
    /// </summary>
    string? WorkerInfo(EmuTask task);
}

/// <summary>
/// Told about every real sleep in schedule(): once the task's state, <see cref="EmuTask.WaitingOn"/> and
/// switch count are updated and before it blocks, and again once it runs. Called on the sleeping task;
/// must not sleep.
/// </summary>
public interface ISleepObserver
{
    /// <summary>The task is about to block.</summary>
    void SleepStarted(EmuTask task);

    /// <summary>The task was woken (or timed out) and runs again.</summary>
    void SleepEnded(EmuTask task);
}

/// <summary>
/// Implemented by the block layer's struct blk_plug and installed as <see cref="EmuTask.Plug"/> between
/// blk_start_plug and blk_finish_plug: schedule() issues what it holds before the task sleeps.
/// </summary>
public interface ITaskPlug
{
    /// <summary>blk_needs_flush_plug(): the plug holds requests.</summary>
    bool NeedsFlush { get; }

    /// <summary>
    /// blk_schedule_flush_plug(): issues them. Called by the task itself in schedule(), with its sleeping state
    /// already set, so it must not sleep.
    /// </summary>
    void ScheduleFlush();
}
