// Emu's vocabulary of scheduling points (after Coyote's SchedulingPointType): every place where control may
// pass from one emulated task to another is named by one value, so a controlled scheduler can take over.
namespace Emu.Kernel;

/// <summary>A place where control may switch between emulated tasks.</summary>
public enum SchedPoint
{
    /// <summary>schedule() entered (the task may sleep or just yield).</summary>
    Schedule,

    /// <summary>try_to_wake_up() made a sleeping task runnable.</summary>
    Wake,

    /// <summary>cond_resched(): a voluntary preemption point that never sleeps.</summary>
    CondResched,

    /// <summary>A task was created or started.</summary>
    TaskStart,

    /// <summary>A task body returned.</summary>
    TaskExit,

    /// <summary>mutex_lock() about to contend.</summary>
    MutexLock,

    /// <summary>mutex_unlock().</summary>
    MutexUnlock,

    /// <summary>down_read().</summary>
    DownRead,

    /// <summary>down_write().</summary>
    DownWrite,

    /// <summary>up_read() / up_write().</summary>
    RwsemUp,

    /// <summary>wait_for_completion().</summary>
    WaitForCompletion,

    /// <summary>complete() / complete_all().</summary>
    Complete,

    /// <summary>lock_page().</summary>
    LockPage,

    /// <summary>unlock_page().</summary>
    UnlockPage,

    /// <summary>wait_on_page_writeback().</summary>
    WaitOnPageWriteback,

    /// <summary>end_page_writeback().</summary>
    EndPageWriteback,

    /// <summary>lock_extent_bits() and friends (btrfs extent io tree).</summary>
    LockExtent,

    /// <summary>unlock_extent() (btrfs extent io tree).</summary>
    UnlockExtent,

    /// <summary>queue_work_on().</summary>
    QueueWork,

    /// <summary>A worker picks a work item (process_one_work).</summary>
    ProcessWork,

    /// <summary>submit_bio().</summary>
    SubmitBio,

    /// <summary>bio_endio() in completion context.</summary>
    EndIo,

    /// <summary>Ordered extent creation or completion (btrfs).</summary>
    OrderedExtent,
}
