// Mirrors: fs/fs-writeback.c (v4.4): __mark_inode_dirty, wb_wakeup, wb_wakeup_delayed, wb_queue_work,
// wb_start_writeback, wb_start_background_writeback, wb_workfn, wb_do_writeback, wb_writeback,
// wb_check_old_data_flush, wb_check_background_flush, queue_io / move_expired_inodes, __writeback_inodes_wb,
// writeback_sb_inodes, __writeback_single_inode, requeue_inode, redirty_tail, requeue_io,
// inode_sleep_on_writeback, inode_sync_complete, writeback_chunk_size, wakeup_flusher_threads,
// sync_inodes_sb, wait_sb_inodes; and the bdi_writeback of mm/backing-dev.c.
//
// Model: each backing device has one bdi_writeback with three inode lists: b_dirty (newest first, by when
// the inode was first dirtied), b_io (being written in this pass) and b_more_io (written partially, more to
// do). Its flusher is a delayed work item, wb_workfn, on the "writeback" workqueue: dirtying the first inode
// arms it for dirty_writeback_interval; queued works (sync, wakeup_flusher_threads) and background writeback
// (balance_dirty_pages over the background threshold) kick it at once. wb_workfn runs queued works, then the
// periodic kupdate pass (inodes dirtied longer than dirty_expire_interval ago), then background writeback
// while over the background threshold, each via wb_writeback -> (__writeback_inodes_wb ->)
// writeback_sb_inodes -> __writeback_single_inode -> do_writepages, and re-arms itself while dirty inodes
// remain. An inode is written by one task at a time (I_SYNC); WB_SYNC_ALL writers wait for it.
// Differs: one bdi_writeback per filesystem (no cgroup writeback), no bandwidth estimation (the chunk is
// dirty_limit / DIRTY_SCOPE rounded to 1024 pages), no inode metadata writeback (btrfs metadata is in
// memory), and intervals are in ms of Environment.TickCount64 (jiffies), configurable and scaled down.
//
// Locking legend: WB = ListLock (wb->list_lock); W = _workLock (wb->work_lock); IL = inode->i_lock.
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>One of a bdi_writeback's inode lists (b_dirty, b_io, b_more_io): intrusive, newest at the head.</summary>
internal sealed class InodeIoList
{
    private VfsInode? _head; // WB
    private VfsInode? _tail; // WB

    public bool Empty => _head is null;

    public VfsInode? Tail => _tail;

    public VfsInode? Head => _head;

    public void AddHead(VfsInode inode)
    {
        inode.IoList = this;
        inode.IoPrev = null;
        inode.IoNext = _head;
        if (_head is null)
        {
            _tail = inode;
        }
        else
        {
            _head.IoPrev = inode;
        }

        _head = inode;
    }

    public void AddTail(VfsInode inode)
    {
        inode.IoList = this;
        inode.IoNext = null;
        inode.IoPrev = _tail;
        if (_tail is null)
        {
            _head = inode;
        }
        else
        {
            _tail.IoNext = inode;
        }

        _tail = inode;
    }

    public void Remove(VfsInode inode)
    {
        if (inode.IoPrev is null)
        {
            _head = inode.IoNext;
        }
        else
        {
            inode.IoPrev.IoNext = inode.IoNext;
        }

        if (inode.IoNext is null)
        {
            _tail = inode.IoPrev;
        }
        else
        {
            inode.IoNext.IoPrev = inode.IoPrev;
        }

        inode.IoPrev = null;
        inode.IoNext = null;
        inode.IoList = null;
    }
}

/// <summary>enum wb_reason (the ones Emu uses).</summary>
public enum WbReason
{
    /// <summary>WB_REASON_BACKGROUND.</summary>
    Background,

    /// <summary>WB_REASON_SYNC.</summary>
    Sync,

    /// <summary>WB_REASON_PERIODIC.</summary>
    Periodic,

    /// <summary>WB_REASON_FS_FREE_SPACE (btrfs flushing to make space).</summary>
    FsFreeSpace,
}

/// <summary>struct wb_writeback_work.</summary>
internal sealed class WbWritebackWork
{
    public long NrPages;
    public SuperBlock? Sb;
    public WbSyncMode SyncMode;
    public bool ForKupdate;
    public bool RangeCyclic;
    public bool ForBackground;
    public bool ForSync;
    public WbReason Reason;
    public Completion? Done; // wb_completion: completed when the work is finished
}

/// <summary>struct bdi_writeback: a backing device's dirty inodes and its flusher work.</summary>
public sealed class BdiWriteback
{
    /// <summary>Writeback chunks are rounded to this many pages. MIN_WRITEBACK_PAGES.</summary>
    public const long MinWritebackPages = 1024;

    /// <summary>dirty_limit / DIRTY_SCOPE caps a WB_SYNC_NONE chunk. DIRTY_SCOPE.</summary>
    public const int DirtyScope = 8;

    private const int WbRegistered = 1 << 0;     // WB_registered
    private const int WbWritebackRunning = 1 << 1; // WB_writeback_running
    private const long SliceMs = 100;            // HZ / 10: a pass yields to others after this long

    private static readonly WorkFunc s_wbWorkfn = static w => ((WbDelayedWork)w).Wb.WbWorkfn();

    internal readonly Lock ListLock = new();       // wb->list_lock
    internal readonly InodeIoList BDirty = new();  // WB
    internal readonly InodeIoList BIo = new();     // WB
    internal readonly InodeIoList BMoreIo = new(); // WB
    private readonly Lock _workLock = new();       // wb->work_lock
    private readonly Queue<WbWritebackWork> _workList = new(); // W
    private readonly Workqueue _bdiWq;             // I: the "writeback" workqueue
    private readonly DelayedWork _dwork;           // I: runs wb_workfn
    private readonly string _desc;                 // I: "flush-btrfs-1"
    private int _state;                            // Interlocked: WB_* bits
    private long _lastOldFlush;                    // written by the flusher only

    /// <param name="bdiWq">The "writeback" workqueue (bdi_wq).</param>
    /// <param name="devName">The backing device's name, e.g. "btrfs-1" (the flusher describes itself as "flush-btrfs-1").</param>
    /// <param name="sb">The filesystem written back through this device.</param>
    /// <param name="zone">The memory zone whose dirty pages the thresholds count.</param>
    public BdiWriteback(Workqueue bdiWq, string devName, SuperBlock sb, Zone zone)
    {
        _bdiWq = bdiWq;
        _dwork = new WbDelayedWork(s_wbWorkfn, "wb_workfn", "(&(&wb->dwork)->work)") { Wb = this };
        DevName = devName;
        _desc = "flush-" + devName;
        Sb = sb;
        Zone = zone;
        _lastOldFlush = Environment.TickCount64;
        _state = WbRegistered;
    }

    /// <summary>The device name (dev_name(bdi->dev)).</summary>
    public string DevName { get; }

    /// <summary>The filesystem.</summary>
    public SuperBlock Sb { get; }

    /// <summary>The memory zone.</summary>
    public Zone Zone { get; }

    /// <summary>dirty_writeback_interval in centiseconds: how often the kupdate pass runs (0 disables it).</summary>
    public int DirtyWritebackCentisecs { get; set; } = 50;

    /// <summary>dirty_expire_interval in centiseconds: how old dirty data must be for the kupdate pass.</summary>
    public int DirtyExpireCentisecs { get; set; } = 300;

    /// <summary>writeback_in_progress(): the flusher is inside wb_do_writeback.</summary>
    public bool WritebackInProgress => (Volatile.Read(ref _state) & WbWritebackRunning) != 0;

    /// <summary>wb_has_dirty_io(): some inode is on b_dirty, b_io or b_more_io.</summary>
    public bool HasDirtyIo
    {
        get
        {
            lock (ListLock)
            {
                return !BDirty.Empty || !BIo.Empty || !BMoreIo.Empty;
            }
        }
    }

    /// <summary>wb_start_background_writeback(): kicks the flusher to write while over the background threshold.</summary>
    public void StartBackgroundWriteback() => WbWakeup();

    /// <summary>
    /// wb_start_writeback() (wakeup_flusher_threads): queues a WB_SYNC_NONE pass over <paramref name="nrPages"/>
    /// pages (0: all dirty pages).
    /// </summary>
    public void StartWriteback(long nrPages, WbReason reason)
    {
        if (nrPages == 0)
        {
            nrPages = Zone.NrFileDirty;
        }

        WbQueueWork(new WbWritebackWork { NrPages = nrPages, SyncMode = WbSyncMode.None, RangeCyclic = true, Reason = reason });
    }

    /// <summary>
    /// sync_inodes_sb(): queues a WB_SYNC_ALL pass over the filesystem, waits for the flusher to finish it,
    /// then waits for writeback of every inode (wait_sb_inodes).
    /// </summary>
    public void SyncInodesSb()
    {
        using KFrame frame = KFunc.Enter("sync_inodes_sb");
        if (!HasDirtyIo)
        {
            return;
        }

        var done = new Completion("wb_completion");
        WbQueueWork(new WbWritebackWork
        {
            Sb = Sb,
            SyncMode = WbSyncMode.All,
            NrPages = long.MaxValue,
            Done = done,
            Reason = WbReason.Sync,
            ForSync = true,
        });
        using (KFunc.Enter("wb_wait_for_completion"))
        {
            done.WaitForCompletion();
        }

        using KFrame wait = KFunc.Enter("wait_sb_inodes");
        foreach (VfsInode inode in Sb.Inodes())
        {
            if (inode.Mapping.NrPagesCount != 0)
            {
                PageCache.FilemapFdatawaitRange(inode.Mapping, 0, long.MaxValue);
            }
        }
    }

    /// <summary>Stops the flusher (bdi_unregister: wb_shutdown): no new kicks, and waits for a running pass.</summary>
    public void Shutdown()
    {
        Interlocked.And(ref _state, ~WbRegistered);
        Workqueue.CancelDelayedWorkSync(_dwork);
        lock (_workLock)
        {
            while (_workList.TryDequeue(out WbWritebackWork? work))
            {
                work.Done?.CompleteAll();
            }
        }
    }

    // wb_wakeup(): run the flusher now.
    internal void WbWakeup()
    {
        lock (_workLock)
        {
            if ((Volatile.Read(ref _state) & WbRegistered) != 0)
            {
                _bdiWq.ModDelayedWork(_dwork, 0);
            }
        }
    }

    // wb_wakeup_delayed(): run the flusher after dirty_writeback_interval.
    internal void WbWakeupDelayed()
    {
        long timeoutMs = DirtyWritebackCentisecs * 10L;
        lock (_workLock)
        {
            if ((Volatile.Read(ref _state) & WbRegistered) != 0)
            {
                _bdiWq.QueueDelayedWork(_dwork, timeoutMs);
            }
        }
    }

    // wb_queue_work()
    private void WbQueueWork(WbWritebackWork work)
    {
        lock (_workLock)
        {
            if ((Volatile.Read(ref _state) & WbRegistered) == 0)
            {
                work.Done?.CompleteAll();
                return;
            }

            _workList.Enqueue(work);
            _bdiWq.ModDelayedWork(_dwork, 0);
        }
    }

    // wb_workfn(): the flusher.
    private void WbWorkfn()
    {
        using KFrame frame = KFunc.Enter("wb_workfn");
        Workqueue.SetWorkerDesc(_desc);
        do
        {
            WbDoWriteback();
        }
        while (WorkListNotEmpty());

        if (WorkListNotEmpty())
        {
            WbWakeup();
        }
        else if (HasDirtyIo && DirtyWritebackCentisecs != 0)
        {
            WbWakeupDelayed();
        }
    }

    private bool WorkListNotEmpty()
    {
        lock (_workLock)
        {
            return _workList.Count != 0;
        }
    }

    // wb_do_writeback()
    private long WbDoWriteback()
    {
        long wrote = 0;
        Interlocked.Or(ref _state, WbWritebackRunning);
        while (GetNextWorkItem() is { } work)
        {
            wrote += WbWriteback(work);
            work.Done?.CompleteAll();
        }

        wrote += WbCheckOldDataFlush();
        wrote += WbCheckBackgroundFlush();
        Interlocked.And(ref _state, ~WbWritebackRunning);
        return wrote;
    }

    private WbWritebackWork? GetNextWorkItem()
    {
        lock (_workLock)
        {
            return _workList.TryDequeue(out WbWritebackWork? work) ? work : null;
        }
    }

    // wb_check_old_data_flush(): the periodic kupdate pass.
    private long WbCheckOldDataFlush()
    {
        if (DirtyWritebackCentisecs == 0)
        {
            return 0;
        }

        long now = Environment.TickCount64;
        if (now < _lastOldFlush + DirtyWritebackCentisecs * 10L)
        {
            return 0;
        }

        _lastOldFlush = now;
        long nrPages = Zone.NrFileDirty;
        if (nrPages == 0)
        {
            return 0;
        }

        return WbWriteback(new WbWritebackWork { NrPages = nrPages, SyncMode = WbSyncMode.None, ForKupdate = true, RangeCyclic = true, Reason = WbReason.Periodic });
    }

    // wb_check_background_flush()
    private long WbCheckBackgroundFlush()
    {
        if (!OverBgroundThresh())
        {
            return 0;
        }

        return WbWriteback(new WbWritebackWork { NrPages = long.MaxValue, SyncMode = WbSyncMode.None, ForBackground = true, RangeCyclic = true, Reason = WbReason.Background });
    }

    // over_bground_thresh()
    private bool OverBgroundThresh() => Zone.NrFileDirty > PageWriteback.GlobalDirtyLimits(Zone).Background;

    // wb_writeback(): runs one work until its pages are written or (background/kupdate) it should yield.
    private long WbWriteback(WbWritebackWork work)
    {
        using KFrame frame = KFunc.Enter("wb_writeback");
        long nrPages = work.NrPages;
        long oldest = Environment.TickCount64;
        ListLock.Enter();
        try
        {
            while (work.NrPages > 0)
            {
                if ((work.ForBackground || work.ForKupdate) && WorkListNotEmpty())
                {
                    break;
                }

                if (work.ForBackground && !OverBgroundThresh())
                {
                    break;
                }

                long now = Environment.TickCount64;
                if (work.ForKupdate)
                {
                    oldest = now - DirtyExpireCentisecs * 10L;
                }
                else if (work.ForBackground)
                {
                    oldest = now;
                }

                if (BIo.Empty)
                {
                    QueueIo(oldest);
                }

                long progress = work.Sb is not null ? WritebackSbInodes(work.Sb, work) : __WritebackInodesWb(work);
                if (progress != 0)
                {
                    continue;
                }

                if (BMoreIo.Empty)
                {
                    break;
                }

                // Nothing written: wait for some inode under writeback elsewhere to become available.
                VfsInode inode = BMoreIo.Tail!;
                ListLock.Exit();
                try
                {
                    InodeSleepOnWriteback(inode);
                }
                finally
                {
                    ListLock.Enter();
                }
            }
        }
        finally
        {
            ListLock.Exit();
        }

        return nrPages - work.NrPages;
    }

    // queue_io(): b_more_io and the expired part of b_dirty go to b_io. Context: WB.
    private void QueueIo(long olderThan)
    {
        while (BMoreIo.Tail is { } inode)
        {
            BMoreIo.Remove(inode);
            BIo.AddHead(inode);
        }

        // move_expired_inodes(): b_dirty's tail holds the oldest.
        while (BDirty.Tail is { } inode && inode.DirtiedWhen <= olderThan)
        {
            BDirty.Remove(inode);
            BIo.AddHead(inode);
        }
    }

    // __writeback_inodes_wb(): writes b_io inode by inode, skipping filesystems being unmounted. Context: WB.
    private long __WritebackInodesWb(WbWritebackWork work)
    {
        using KFrame frame = KFunc.Enter("__writeback_inodes_wb");
        long start = Environment.TickCount64;
        long wrote = 0;
        while (!BIo.Empty)
        {
            if (!TrylockSuper())
            {
                RedirtyTail(BIo.Tail!);
                continue;
            }

            wrote += WritebackSbInodes(Sb, work);
            Sb.SUmount.UpRead();
            if (wrote != 0 && (Environment.TickCount64 - start > SliceMs || work.NrPages <= 0))
            {
                break;
            }
        }

        return wrote;
    }

    private bool TrylockSuper()
    {
        using KFrame frame = KFunc.Enter("trylock_super");
        return Sb.SUmount.DownReadTrylock();
    }

    // writeback_sb_inodes(). Context: WB, dropped around each inode's writeback.
    private long WritebackSbInodes(SuperBlock sb, WbWritebackWork work)
    {
        using KFrame frame = KFunc.Enter("writeback_sb_inodes");
        long start = Environment.TickCount64;
        long wrote = 0;
        var wbc = new WritebackControl
        {
            SyncMode = work.SyncMode,
            ForKupdate = work.ForKupdate,
            ForBackground = work.ForBackground,
            ForSync = work.ForSync,
            RangeCyclic = work.RangeCyclic,
            RangeStart = 0,
            RangeEnd = long.MaxValue,
        };
        while (BIo.Tail is { } inode)
        {
            InodeState state;
            lock (inode.ILock)
            {
                state = inode.IState;
            }

            if ((state & (InodeState.New | InodeState.Freeing)) != 0)
            {
                RedirtyTail(inode);
                continue;
            }

            if ((state & InodeState.Sync) != 0 && wbc.SyncMode != WbSyncMode.All)
            {
                RequeueIo(inode); // someone else writes it; come back later
                continue;
            }

            ListLock.Exit();
            bool busy;
            lock (inode.ILock)
            {
                busy = (inode.IState & InodeState.Sync) != 0;
                if (!busy)
                {
                    inode.IState |= InodeState.Sync;
                }
            }

            if (busy)
            {
                // WB_SYNC_ALL: wait for the other writer, then look at the inode again.
                try
                {
                    InodeSleepOnWriteback(inode);
                }
                finally
                {
                    ListLock.Enter();
                }

                continue;
            }

            long writeChunk = WritebackChunkSize(work);
            wbc.NrToWrite = writeChunk;
            wbc.PagesSkipped = 0;
            try
            {
                __WritebackSingleInode(inode, wbc);
            }
            finally
            {
                ListLock.Enter();
            }

            long written = writeChunk - wbc.NrToWrite;
            work.NrPages -= written;
            wrote += written;
            lock (inode.ILock)
            {
                if ((inode.IState & InodeState.Dirty) == 0)
                {
                    wrote++;
                }

                RequeueInode(inode, wbc);
                InodeSyncComplete(inode);
            }

            if (wrote != 0 && (Environment.TickCount64 - start > SliceMs || work.NrPages <= 0))
            {
                break;
            }
        }

        return wrote;
    }

    // writeback_chunk_size()
    private long WritebackChunkSize(WbWritebackWork work)
    {
        if (work.SyncMode == WbSyncMode.All)
        {
            return long.MaxValue;
        }

        long pages = Math.Min(PageWriteback.GlobalDirtyLimits(Zone).Dirty / DirtyScope, work.NrPages);
        return (pages + MinWritebackPages) / MinWritebackPages * MinWritebackPages;
    }

    // __writeback_single_inode(): writes the pages; I_SYNC is held by the caller.
    private static void __WritebackSingleInode(VfsInode inode, WritebackControl wbc)
    {
        using KFrame frame = KFunc.Enter("__writeback_single_inode");
        AddressSpace mapping = inode.Mapping;
        PageWriteback.DoWritepages(mapping, wbc);
        if (wbc.SyncMode == WbSyncMode.All && !wbc.ForSync)
        {
            PageCache.FilemapFdatawaitRange(mapping, 0, long.MaxValue);
        }

        bool tagged = mapping.MappingTagged(PageCacheTag.Dirty);
        lock (inode.ILock)
        {
            inode.IState &= ~InodeState.Dirty;
            if (tagged)
            {
                inode.IState |= InodeState.DirtyPages;
            }
        }
    }

    // requeue_inode(): where the inode goes after a writeback pass. Context: WB, IL.
    private void RequeueInode(VfsInode inode, WritebackControl wbc)
    {
        if ((inode.IState & InodeState.Freeing) != 0)
        {
            return;
        }

        if ((inode.IState & InodeState.Dirty) != 0 && wbc.SyncMode == WbSyncMode.All)
        {
            inode.DirtiedWhen = Environment.TickCount64;
        }

        if (wbc.PagesSkipped != 0)
        {
            RedirtyTail(inode);
            return;
        }

        if (inode.Mapping.MappingTagged(PageCacheTag.Dirty))
        {
            if (wbc.NrToWrite <= 0)
            {
                RequeueIo(inode); // slice used up: continue in this pass
            }
            else
            {
                RedirtyTail(inode); // blocked somehow: retry later
            }
        }
        else if ((inode.IState & InodeState.Dirty) != 0)
        {
            RedirtyTail(inode);
        }
        else if (inode.IoList is { } list)
        {
            list.Remove(inode); // clean
        }
    }

    // redirty_tail(): back to b_dirty as its newest entry, keeping b_dirty ordered by dirtied_when. Context: WB.
    private void RedirtyTail(VfsInode inode)
    {
        if (BDirty.Head is { } newest && inode.DirtiedWhen < newest.DirtiedWhen)
        {
            inode.DirtiedWhen = Environment.TickCount64;
        }

        inode.IoList?.Remove(inode);
        BDirty.AddHead(inode);
    }

    // requeue_io(): to b_more_io for the next round of this pass. Context: WB.
    private void RequeueIo(VfsInode inode)
    {
        inode.IoList?.Remove(inode);
        BMoreIo.AddHead(inode);
    }

    // inode_sync_complete(): clears I_SYNC and wakes its waiters. Context: IL.
    private static void InodeSyncComplete(VfsInode inode)
    {
        inode.IState &= ~InodeState.Sync;
        WaitBit.WakeUpBit(inode, 7);
    }

    // inode_sleep_on_writeback(): sleeps until the inode's I_SYNC clears (one wake-up).
    private static void InodeSleepOnWriteback(VfsInode inode)
    {
        using KFrame frame = KFunc.Enter("inode_sleep_on_writeback");
        EmuTask task = EmuTask.CurrentOrThrow;
        WaitQueueHead wq = WaitBit.BitWaitqueue(inode, 7);
        Wait.PrepareToWait(wq, task.WaitEntry, TaskState.Uninterruptible);
        bool sleep;
        lock (inode.ILock)
        {
            sleep = (inode.IState & InodeState.Sync) != 0;
        }

        if (sleep)
        {
            Sched.Schedule();
        }

        Wait.FinishWait(wq, task.WaitEntry);
    }

    /// <summary>
    /// __mark_inode_dirty(): records dirty state on the inode; an inode becoming dirty joins b_dirty and, if it
    /// is the device's first dirty inode, arms the flusher for dirty_writeback_interval.
    /// </summary>
    internal void MarkInodeDirty(VfsInode inode, InodeState flags)
    {
        lock (inode.ILock)
        {
            if ((inode.IState & flags) == flags)
            {
                return;
            }

            bool wasDirty = (inode.IState & InodeState.Dirty) != 0;
            inode.IState |= flags;
            if ((inode.IState & InodeState.Sync) != 0 || wasDirty)
            {
                return; // the running writeback requeues it, or it is already listed
            }
        }

        // i_lock is dropped before list_lock (locked_inode_to_wb_and_lock_list): writeback nests them the other way.
        bool wakeup;
        lock (ListLock)
        {
            wakeup = BDirty.Empty && BIo.Empty && BMoreIo.Empty;
            inode.DirtiedWhen = Environment.TickCount64;
            inode.IoList?.Remove(inode);
            BDirty.AddHead(inode);
        }

        if (wakeup)
        {
            WbWakeupDelayed();
        }
    }

    private sealed class WbDelayedWork(WorkFunc func, string funcName, string lockdepName)
        : DelayedWork(func, funcName, lockdepName)
    {
        public BdiWriteback Wb = null!;
    }
}

/// <summary>fs/fs-writeback.c entry points used by the mm code.</summary>
public static class FsWriteback
{
    /// <summary>__mark_inode_dirty().</summary>
    public static void MarkInodeDirty(VfsInode inode, InodeState flags) => inode.Sb.Wb.MarkInodeDirty(inode, flags);
}
