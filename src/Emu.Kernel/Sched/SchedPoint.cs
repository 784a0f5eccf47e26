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

    /// <summary>
    /// btrfs extent_write_cache_pages() is about to lock the next page of its pass (detail: the Page); reached
    /// after an earlier page's cow_file_range may have created an ordered extent whose other pages are still
    /// dirty and unlocked.
    /// </summary>
    WritepagesNextPage,

    /// <summary>
    /// btrfs cow_file_range() created an ordered extent and unlocked its other pages (detail: the ordered
    /// extent), before the first page is submitted.
    /// </summary>
    CowOrderedExtentCreated,

    /// <summary>
    /// btrfs_get_blocks_direct() mapped a block for a DIO read and left its range locked in the io tree, its
    /// bio not yet submitted (detail: the extent range, a btrfs DIO mapping description).
    /// </summary>
    DioBlockMapped,

    /// <summary>
    /// btrfs lock_and_cleanup_extent_if_need() holds the buffered write's pages and is about to lock the
    /// range in the io tree (detail: the inode).
    /// </summary>
    BufferedWriteLockRange,

    /// <summary>
    /// btrfs lock_extent_direct() found an ordered extent in the range it locked (detail: the ordered extent),
    /// before it unlocks the range and decides whether to wait for it.
    /// </summary>
    LockExtentDirectOrdered,

    /// <summary>
    /// btrfs wait_extent_bit() woke and is about to search its range again, from the start of the state it slept
    /// on, which may lie before the range it was asked to wait for (detail: the range it will search, a btrfs
    /// ExtentWaitRange).
    /// </summary>
    WaitExtentBitWoken,
}
