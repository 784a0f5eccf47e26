// Mirrors: mm/page-writeback.c (v4.4): do_writepages, __set_page_dirty_nobuffers, account_page_dirtied,
// account_page_redirty, redirty_page_for_writepage, clear_page_dirty_for_io, test_set_page_writeback,
// test_clear_page_writeback, end_page_writeback (mm/filemap.c), tag_pages_for_writeback,
// balance_dirty_pages_ratelimited, balance_dirty_pages, global_dirty_limits.
//
// Model: a page's dirty and writeback flags and its radix-tree tags change together under tree_lock:
// dirtying tags DIRTY and puts the inode on the flusher's dirty list; clear_page_dirty_for_io clears only the
// flag (the DIRTY tag stays until writeback starts); set_page_writeback tags WRITEBACK and drops DIRTY
// (unless redirtied) and TOWRITE; end_page_writeback clears flag and tag and wakes PG_writeback waiters.
// tag_pages_for_writeback copies DIRTY to TOWRITE over a range before a WB_SYNC_ALL pass, so pages dirtied
// during the pass are not chased forever. Writers call balance_dirty_pages every few pages dirtied: above
// the background threshold it kicks the flusher, above the dirty threshold it sleeps until writeback has
// brought the count down.
// Differs: thresholds are ratios of the zone's page limit (not of dirtyable memory) and there is no
// per-bdi bandwidth estimation: a throttled writer sleeps in fixed pauses while over the limit.
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>mm/page-writeback.c: dirty and writeback page state, and dirty throttling.</summary>
public static class PageWriteback
{
    /// <summary>Pages a task may dirty between balance_dirty_pages calls (ratelimit_pages, fixed).</summary>
    public const int RatelimitPages = 32;

    /// <summary>Pages tagged per tree_lock hold in tag_pages_for_writeback (WRITEBACK_TAG_BATCH).</summary>
    public const int WritebackTagBatch = 4096;

    /// <summary>A throttled writer's sleep (MAX_PAUSE is HZ/5; Emu pauses shorter, as its I/O is faster).</summary>
    public const int PauseMs = 10;

    [ThreadStatic]
    private static int t_nrDirtied; // current->nr_dirtied

    /// <summary>do_writepages(): the filesystem's -&gt;writepages.</summary>
    public static int DoWritepages(AddressSpace mapping, WritebackControl wbc)
    {
        using KFrame frame = KFunc.Enter("do_writepages");
        if (wbc.NrToWrite <= 0)
        {
            return 0;
        }

        return mapping.Aops.WritePages(mapping, wbc);
    }

    /// <summary>
    /// __set_page_dirty_nobuffers() (btrfs_set_page_dirty): sets PG_dirty; on a clean page also tags it DIRTY,
    /// accounts it and marks the inode's pages dirty for the flusher.
    /// </summary>
    /// <returns>true if the page was clean.</returns>
    public static bool SetPageDirty(Page page)
    {
        if (page.TestAndSet(PageFlags.Dirty))
        {
            return false;
        }

        if (page.Mapping is not AddressSpace mapping)
        {
            return true;
        }

        lock (mapping.TreeLock)
        {
            if (page.Mapping == mapping)
            {
                mapping.Zone.AccountPageDirtied();
                mapping.PageTree.TagSet(page.Index, PageCacheTag.Dirty);
            }
        }

        t_nrDirtied++;
        FsWriteback.MarkInodeDirty(mapping.Host, InodeState.DirtyPages);
        return true;
    }

    /// <summary>
    /// clear_page_dirty_for_io(): clears PG_dirty of a locked page before writing it (the DIRTY tag stays
    /// until set_page_writeback).
    /// </summary>
    /// <returns>true if the page was dirty.</returns>
    public static bool ClearPageDirtyForIo(Page page)
    {
        if (!page.TestAndClear(PageFlags.Dirty))
        {
            return false;
        }

        if (page.Mapping is AddressSpace mapping)
        {
            mapping.Zone.AccountPageCleaned();
        }

        return true;
    }

    /// <summary>account_page_redirty(): a page cleaned for IO and dirtied again is not new dirtying.</summary>
    public static void AccountPageRedirty(Page page)
    {
        if (page.Mapping is AddressSpace mapping)
        {
            mapping.Zone.AccountPageRedirty();
            t_nrDirtied--;
        }
    }

    /// <summary>redirty_page_for_writepage(): writepage declined the page; it stays dirty.</summary>
    public static void RedirtyPageForWritepage(WritebackControl wbc, Page page)
    {
        wbc.PagesSkipped++;
        SetPageDirty(page);
        AccountPageRedirty(page);
    }

    /// <summary>
    /// set_page_writeback() (test_set_page_writeback): sets PG_writeback on a locked page, tags it WRITEBACK,
    /// and drops its TOWRITE tag and (unless it was redirtied) its DIRTY tag.
    /// </summary>
    /// <returns>true if the page was already under writeback.</returns>
    public static bool SetPageWriteback(Page page)
    {
        if (page.Mapping is not AddressSpace mapping)
        {
            return page.TestAndSet(PageFlags.Writeback);
        }

        bool was;
        lock (mapping.TreeLock)
        {
            was = page.TestAndSet(PageFlags.Writeback);
            if (page.Mapping == mapping)
            {
                if (!was)
                {
                    mapping.PageTree.TagSet(page.Index, PageCacheTag.Writeback);
                }

                if (!page.Test(PageFlags.Dirty))
                {
                    mapping.PageTree.TagClear(page.Index, PageCacheTag.Dirty);
                }

                mapping.PageTree.TagClear(page.Index, PageCacheTag.Towrite);
            }
        }

        if (!was)
        {
            mapping.Zone.AccountWritebackStart();
        }

        return was;
    }

    /// <summary>
    /// end_page_writeback(): clears PG_writeback and the WRITEBACK tag and wakes the page's writeback waiters.
    /// Runs in I/O completion context; never sleeps.
    /// </summary>
    public static void EndPageWriteback(Page page)
    {
        bool was;
        AddressSpace? mapping = page.Mapping as AddressSpace;
        if (mapping is null)
        {
            was = page.TestAndClear(PageFlags.Writeback);
        }
        else
        {
            lock (mapping.TreeLock)
            {
                was = page.TestAndClear(PageFlags.Writeback);
                if (was && page.Mapping == mapping)
                {
                    mapping.PageTree.TagClear(page.Index, PageCacheTag.Writeback);
                }
            }
        }

        if (!was)
        {
            Klog.Bug($"BUG: end_page_writeback of {page.Describe()} not under writeback", EmuTask.Current);
            return;
        }

        mapping?.Zone.AccountWritebackEnd();
        WaitBit.WakeUpBit(page, Filemap.PgWriteback);
        Sched.Point(SchedPoint.EndPageWriteback);
    }

    /// <summary>
    /// tag_pages_for_writeback(): tags TOWRITE every page in [start, end] (page indices) tagged DIRTY, in
    /// batches, so a WB_SYNC_ALL pass writes exactly the pages dirty when it began.
    /// </summary>
    public static void TagPagesForWriteback(AddressSpace mapping, long start, long end)
    {
        using KFrame frame = KFunc.Enter("tag_pages_for_writeback");
        while (start <= end)
        {
            int tagged;
            long next;
            lock (mapping.TreeLock)
            {
                tagged = mapping.PageTree.RangeTagIfTagged(start, end, WritebackTagBatch, PageCacheTag.Dirty, PageCacheTag.Towrite, out next);
            }

            Sched.CondResched();
            if (tagged < WritebackTagBatch || next > end)
            {
                break;
            }

            start = next;
        }
    }

    /// <summary>global_dirty_limits(): (background threshold, dirty threshold) in pages.</summary>
    public static (long Background, long Dirty) GlobalDirtyLimits(Zone zone)
    {
        long dirty = Math.Max(1, zone.MaxPages * zone.DirtyRatio / 100);
        long background = Math.Max(1, zone.MaxPages * zone.DirtyBackgroundRatio / 100);
        if (background >= dirty)
        {
            background = dirty / 2;
        }

        return (background, dirty);
    }

    /// <summary>
    /// balance_dirty_pages_ratelimited(): after every <see cref="RatelimitPages"/> pages a task dirties,
    /// checks the dirty limits (balance_dirty_pages).
    /// </summary>
    public static void BalanceDirtyPagesRatelimited(AddressSpace mapping)
    {
        if (t_nrDirtied < RatelimitPages)
        {
            return;
        }

        using KFrame frame = KFunc.Enter("balance_dirty_pages_ratelimited");
        t_nrDirtied = 0;
        BalanceDirtyPages(mapping);
    }

    // balance_dirty_pages(): kicks background writeback over the background threshold and pauses the writer
    // while dirty plus writeback pages exceed the dirty threshold.
    private static void BalanceDirtyPages(AddressSpace mapping)
    {
        using KFrame frame = KFunc.Enter("balance_dirty_pages");
        Zone zone = mapping.Zone;
        BdiWriteback wb = mapping.Host.Sb.Wb;
        while (true)
        {
            long nrReclaimable = zone.NrFileDirty;
            long nrDirty = nrReclaimable + zone.NrWriteback;
            (long bgThresh, long thresh) = GlobalDirtyLimits(zone);
            if (nrDirty <= (bgThresh + thresh) / 2)
            {
                break; // freerun
            }

            if (!wb.WritebackInProgress)
            {
                wb.StartBackgroundWriteback();
            }

            if (nrDirty < thresh)
            {
                break;
            }

            // TASK_KILLABLE in the kernel; Emu has no signals, and a throttled writer is not hung.
            Sched.SetCurrentState(TaskState.Interruptible);
            Sched.IoScheduleTimeout(PauseMs);
        }

        if (!wb.WritebackInProgress && zone.NrFileDirty > GlobalDirtyLimits(zone).Background)
        {
            wb.StartBackgroundWriteback();
        }
    }
}
