// Mirrors: mm/filemap.c and include/linux/pagemap.h (v4.4): lock_page, trylock_page, __lock_page,
// unlock_page, wait_on_page_locked, wait_on_page_bit, wait_on_page_writeback, end_page_writeback, and
// mm/page-writeback.c test_set_page_writeback.
//
// Model: PG_locked is a bit lock in the page's flags word taken with test_and_set_bit; contenders sleep on
// the hashed bit wait queue through __lock_page -> __wait_on_bit_lock -> bit_wait_io -> io_schedule, so a
// blocked locker's trace reads like the kernel's. unlock_page clears the bit with a full barrier and wakes
// one waiter. PG_writeback waits are non-exclusive bit waits woken by end_page_writeback.
// Emu additions: the locking task is recorded as the page's LockOwner and in its held locks (class
// "PG_locked", printed per page); unlock_page, which I/O completion may call on another task, removes that
// record from the owner. A sleeper on a page lock records the page as WaitingOn.
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>Page lock and page writeback operations.</summary>
public static class Filemap
{
    /// <summary>PG_locked bit number.</summary>
    public const int PgLocked = 0;

    /// <summary>PG_writeback bit number.</summary>
    public const int PgWriteback = 13;

    private static readonly LockClass s_pageLockClass = CreatePageLockClass();

    /// <summary>lock_page(): takes the page lock, sleeping (TASK_UNINTERRUPTIBLE, as I/O wait) while another holds it.</summary>
    public static void LockPage(Page page)
    {
        EmuTask? task = EmuTask.Current;
        string? at = task?.TopFrame;
        using KFrame frame = KFunc.Enter("lock_page");
        Sched.Point(SchedPoint.LockPage);
        if (Bitops.TestAndSetBit(ref page.FlagsWord, PgLocked))
        {
            __LockPage(page);
        }

        PageLocked(page, task, at);
    }

    /// <summary>trylock_page(): takes the page lock if it is free.</summary>
    public static bool TrylockPage(Page page)
    {
        if (Bitops.TestAndSetBit(ref page.FlagsWord, PgLocked))
        {
            return false;
        }

        EmuTask? task = EmuTask.Current;
        PageLocked(page, task, task?.TopFrame);
        return true;
    }

    /// <summary>unlock_page(): releases the page lock (from any task, e.g. read completion) and wakes a waiter.</summary>
    public static void UnlockPage(Page page)
    {
        Sched.Point(SchedPoint.UnlockPage);
        EmuTask? owner = page.LockOwner;
        // Drop the record before the bit: once the bit is clear the owner may lock the page again and record it anew.
        page.SetLockOwner(null);
        if (owner is not null)
        {
            HeldLocks.Released(owner, page);
        }

        if (!Bitops.TestAndClearBit(ref page.FlagsWord, PgLocked))
        {
            Klog.Bug($"BUG: unlock_page of unlocked {page.Describe()}", EmuTask.Current);
        }

        WaitBit.WakeUpBit(page, PgLocked);
    }

    /// <summary>
    /// Emu addition: the locked page now belongs to read I/O, whose completion unlocks it (in the kernel PG_locked
    /// has no owner at all). Drops the locker's record, so a locker that then waits for its own read (lock_page in
    /// do_generic_file_read) is not taken for a task waiting on itself. Call before the bio can be submitted.
    /// </summary>
    public static void PageLockHandOffToIo(Page page)
    {
        EmuTask? owner = page.LockOwner;
        if (owner is null)
        {
            return;
        }

        page.SetLockOwner(null);
        HeldLocks.Released(owner, page);
    }

    /// <summary>wait_on_page_locked(): sleeps until the page is unlocked, without taking the lock.</summary>
    public static void WaitOnPageLocked(Page page)
    {
        if (page.Test(PageFlags.Locked))
        {
            WaitOnPageBit(page, PgLocked, page);
        }
    }

    /// <summary>wait_on_page_writeback(): sleeps until PG_writeback is clear.</summary>
    public static void WaitOnPageWriteback(Page page)
    {
        if (page.Test(PageFlags.Writeback))
        {
            Sched.Point(SchedPoint.WaitOnPageWriteback);
            WaitOnPageBit(page, PgWriteback, page.WritebackWait);
        }
    }

    /// <summary>test_set_page_writeback(): sets PG_writeback, returns whether it was already set.</summary>
    public static bool TestSetPageWriteback(Page page) => page.TestAndSet(PageFlags.Writeback);

    /// <summary>set_page_writeback().</summary>
    public static void SetPageWriteback(Page page) => TestSetPageWriteback(page);

    /// <summary>end_page_writeback(): clears PG_writeback (BUG if it was clear) and wakes its waiters.</summary>
    public static void EndPageWriteback(Page page)
    {
        Sched.Point(SchedPoint.EndPageWriteback);
        if (!Bitops.TestAndClearBit(ref page.FlagsWord, PgWriteback))
        {
            Klog.Bug($"BUG: end_page_writeback of {page.Describe()} not under writeback", EmuTask.Current);
        }

        WaitBit.WakeUpBit(page, PgWriteback);
    }

    // wait_on_page_bit(): __wait_on_bit with bit_wait_io; wake_up_page wakes all of them.
    private static void WaitOnPageBit(Page page, int bit, IWaitResource resource)
    {
        using KFrame frame = KFunc.Enter("wait_on_page_bit");
        WaitBit.__WaitOnBit(page, ref page.FlagsWord, bit, TaskState.Uninterruptible, io: true, resource);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void __LockPage(Page page)
    {
        using KFrame frame = KFunc.Enter("__lock_page");
        WaitBit.__WaitOnBitLock(page, ref page.FlagsWord, PgLocked, TaskState.Uninterruptible, io: true, page);
    }

    private static void PageLocked(Page page, EmuTask? task, string? at)
    {
        page.SetLockOwner(task);
        if (task is not null)
        {
            HeldLocks.Acquired(task, page, s_pageLockClass, read: false, at);
        }
    }

    private static LockClass CreatePageLockClass()
    {
        LockClass lockClass = LockClass.Get("PG_locked");
        lockClass.ShowInstance = true;
        return lockClass;
    }
}
