// Mirrors: include/linux/workqueue.h (v4.4) struct delayed_work, INIT_DELAYED_WORK, to_delayed_work,
// delayed_work_pending.
//
// Model: a work item plus the timer that queues it when the delay expires. While the timer is armed it owns
// the work's PENDING bit, which is how try_to_grab_pending() can take a delayed work back from either place.
// Locking legend: the fields below are written by the PENDING owner before the timer is armed.
namespace Emu.Kernel;

/// <summary>struct delayed_work. The work itself is this object (container_of(work) is a cast).</summary>
public class DelayedWork : WorkStruct
{
    private static readonly TimerFunc s_delayedWorkTimerFn = Workqueue.DelayedWorkTimerFn;

    /// <summary>INIT_DELAYED_WORK().</summary>
    /// <param name="func">The work function (a cached delegate).</param>
    /// <param name="funcName">The kernel symbol it stands for, e.g. "wb_workfn".</param>
    /// <param name="lockdepName">Lockdep name of the work, e.g. "(&amp;(&amp;wb->dwork)->work)".</param>
    public DelayedWork(WorkFunc func, string funcName, string? lockdepName = null)
        : base(func, funcName, lockdepName)
    {
        Timer = new TimerList(s_delayedWorkTimerFn, this);
    }

    /// <summary>dwork->work.</summary>
    public WorkStruct Work => this;

    /// <summary>delayed_work_pending(): the timer is armed or the work is queued.</summary>
    public bool DelayedWorkPending => Pending;

    /// <summary>dwork->timer.</summary>
    public TimerList Timer { get; }

    internal Workqueue? Wq;  // the workqueue the timer queues on
    internal int Cpu;        // the CPU it queues for (Workqueue.WorkCpuUnbound for the caller's)
}
