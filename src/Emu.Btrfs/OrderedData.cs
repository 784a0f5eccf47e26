// Mirrors: fs/btrfs/ordered-data.c (v4.4): __btrfs_add_ordered_extent (btrfs_add_ordered_extent,
// btrfs_add_ordered_extent_dio), btrfs_add_ordered_sum, btrfs_dec_test_ordered_pending,
// btrfs_dec_test_first_ordered_pending, btrfs_remove_ordered_extent, btrfs_run_ordered_extent_work,
// btrfs_wait_ordered_extents, btrfs_wait_ordered_roots, btrfs_start_ordered_extent,
// btrfs_wait_ordered_range, btrfs_lookup_ordered_extent, btrfs_lookup_ordered_range,
// btrfs_lookup_first_ordered_extent; fs/btrfs/ordered-data.h (BTRFS_ORDERED_* bits).
//
// Model: an ordered extent is a range of a file whose new data has disk space and is being written: it is
// created when delalloc is allocated (cow_file_range, or the DIO write path with DIRECT set), counts down the
// bytes still under I/O as write bios complete, and when the count reaches zero the endio-write worker runs
// btrfs_finish_ordered_io, which records the file extent item and removes the ordered extent (COMPLETE, wake
// up waiters). Per inode they sit in a tree by file offset; per root on a list that btrfs_wait_ordered_extents
// (snapshot creation, sync) drains by queueing one flush work per ordered extent on the flush_delalloc
// workqueue and waiting for each completion in turn. btrfs_start_ordered_extent writes back the extent's
// pages (unless DIRECT: its pages are not in the page cache) and waits for COMPLETE; that writeback takes
// page locks, which is the edge the v4.4 DIO-read deadlock runs through.
// Emu additions: an ordered extent is an IWaitResource ("ordered extent [4096, 12287] of inode 257"); its
// holder is the worker running btrfs_finish_ordered_io for it, once one does.
// Differs: a sorted array per inode instead of an rb-tree; ordered extents are garbage collected (no refs).
//
// Locking legend: T = OrderedInodeTree.Lock (tree->lock); RO = root->ordered_extent_lock;
// O = fs_info->ordered_root_lock; A = Interlocked / Bitops.
using System.Diagnostics;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>Bit numbers of btrfs_ordered_extent->flags (BTRFS_ORDERED_*, v4.4).</summary>
public enum OrderedFlag
{
    /// <summary>All the I/O is done. BTRFS_ORDERED_IO_DONE.</summary>
    IoDone = 0,

    /// <summary>btrfs_finish_ordered_io has run; removed from the tree. BTRFS_ORDERED_COMPLETE.</summary>
    Complete = 1,

    /// <summary>Written in place (nodatacow). BTRFS_ORDERED_NOCOW.</summary>
    Nocow = 2,

    /// <summary>BTRFS_ORDERED_COMPRESSED.</summary>
    Compressed = 3,

    /// <summary>Into a preallocated extent. BTRFS_ORDERED_PREALLOC.</summary>
    Prealloc = 4,

    /// <summary>Created by direct IO: its pages are not in the page cache. BTRFS_ORDERED_DIRECT.</summary>
    Direct = 5,

    /// <summary>A write of it failed. BTRFS_ORDERED_IOERR.</summary>
    Ioerr = 6,

    /// <summary>BTRFS_ORDERED_UPDATED_ISIZE.</summary>
    UpdatedIsize = 7,

    /// <summary>BTRFS_ORDERED_TRUNCATED.</summary>
    Truncated = 9,

    /// <summary>BTRFS_ORDERED_PENDING.</summary>
    Pending = 11,
}

/// <summary>struct btrfs_ordered_extent.</summary>
public sealed class BtrfsOrderedExtent : IWaitResource
{
    internal long FlagsWord;                       // A: 1 << OrderedFlag
    internal long BytesLeft;                       // T
    internal readonly WaitQueueHead Wait;          // entry->wait: sleepers for COMPLETE (and IO_DONE)
    internal readonly List<OrderedSum> Sums = new(); // T: csums of the written bios
    internal LinkedListNode<BtrfsOrderedExtent>? RootNode; // RO: on root->ordered_extents
    internal readonly OrderedWork FlushWork;       // btrfs_run_ordered_extent_work on flush_workers
    internal readonly OrderedWork FinishWork;      // finish_ordered_fn on endio_write_workers
    private EmuTask? _finisher;                    // the endio-write worker running finish_ordered_io

    internal BtrfsOrderedExtent(BtrfsInode inode, long fileOffset, long start, long len, long diskLen)
    {
        Inode = inode;
        FileOffset = fileOffset;
        Start = start;
        Len = len;
        DiskLen = diskLen;
        BytesLeft = len;
        Wait = new WaitQueueHead(this);
        Completion = new Completion("&ordered->completion");
        FlushWork = new OrderedWork(this);
        FinishWork = new OrderedWork(this);
    }

    /// <summary>The inode.</summary>
    public BtrfsInode Inode { get; }

    /// <summary>file_offset.</summary>
    public long FileOffset { get; }

    /// <summary>start: the disk byte number.</summary>
    public long Start { get; }

    /// <summary>len: bytes of file.</summary>
    public long Len { get; }

    /// <summary>disk_len.</summary>
    public long DiskLen { get; }

    /// <summary>Last file byte (inclusive).</summary>
    public long End => FileOffset + Len - 1;

    /// <summary>ordered->completion: completed by btrfs_run_ordered_extent_work for btrfs_wait_ordered_extents.</summary>
    public Completion Completion { get; }

    /// <summary>Bytes still under I/O.</summary>
    public long BytesLeftCount
    {
        get
        {
            lock (Inode.OrderedTree.Lock)
            {
                return BytesLeft;
            }
        }
    }

    /// <summary>test_bit(flag, &amp;ordered->flags).</summary>
    public bool TestFlag(OrderedFlag flag) => Bitops.TestBit(ref FlagsWord, (int)flag);

    internal void SetFlag(OrderedFlag flag) => Bitops.SetBit(ref FlagsWord, (int)flag);

    internal EmuTask? Finisher
    {
        get => Volatile.Read(ref _finisher);
        set => Volatile.Write(ref _finisher, value);
    }

    /// <inheritdoc />
    public string Describe() => $"ordered extent [{FileOffset}, {End}] of inode {Inode.Ino}";

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
        EmuTask? finisher = Finisher;
        if (finisher is not null)
        {
            holders.Add(finisher);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Describe();
}

/// <summary>A btrfs work item that belongs to an ordered extent (container_of(work, ordered, flush_work / work)).</summary>
internal sealed class OrderedWork(BtrfsOrderedExtent ordered) : BtrfsWork
{
    public BtrfsOrderedExtent Ordered { get; } = ordered;
}

/// <summary>struct btrfs_ordered_inode_tree.</summary>
public sealed class OrderedInodeTree
{
    internal readonly Lock Lock = new();                        // tree->lock
    private readonly List<BtrfsOrderedExtent> _entries = new(); // T: sorted by FileOffset, non-overlapping

    /// <summary>Number of ordered extents in the tree.</summary>
    public int Count
    {
        get
        {
            lock (Lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>A snapshot of the tree, in offset order.</summary>
    public BtrfsOrderedExtent[] Snapshot()
    {
        lock (Lock)
        {
            return _entries.ToArray();
        }
    }

    internal List<BtrfsOrderedExtent> EntriesLocked => _entries;

    // Index of the first entry ending at or after pos. Context: T.
    internal int FirstEndingAtOrAfterLocked(long pos)
    {
        int lo = 0;
        int hi = _entries.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (_entries[mid].End < pos)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}

/// <summary>fs/btrfs/ordered-data.c.</summary>
public static class OrderedData
{
    private static readonly Action<BtrfsWork> s_runOrderedExtentWork = static w => BtrfsRunOrderedExtentWork((OrderedWork)w);

    /// <summary>btrfs_add_ordered_extent(): an ordered extent for buffered writeback of [fileOffset, fileOffset + len).</summary>
    public static BtrfsOrderedExtent BtrfsAddOrderedExtent(BtrfsInode inode, long fileOffset, long start, long len, long diskLen) =>
        __BtrfsAddOrderedExtent(inode, fileOffset, start, len, diskLen, dio: false);

    /// <summary>btrfs_add_ordered_extent_dio(): an ordered extent for a direct-IO write (DIRECT set).</summary>
    public static BtrfsOrderedExtent BtrfsAddOrderedExtentDio(BtrfsInode inode, long fileOffset, long start, long len, long diskLen) =>
        __BtrfsAddOrderedExtent(inode, fileOffset, start, len, diskLen, dio: true);

    /// <summary>btrfs_add_ordered_sum(): attaches a written bio's checksums.</summary>
    public static void BtrfsAddOrderedSum(BtrfsOrderedExtent entry, OrderedSum sum)
    {
        lock (entry.Inode.OrderedTree.Lock)
        {
            entry.Sums.Add(sum);
        }
    }

    /// <summary>
    /// btrfs_dec_test_ordered_pending(): <paramref name="ioSize"/> bytes at <paramref name="fileOffset"/> finished
    /// (failed unless <paramref name="uptodate"/>). Runs in I/O completion context.
    /// </summary>
    /// <returns>The ordered extent, exactly once: when its last bytes finished; else null.</returns>
    public static BtrfsOrderedExtent? BtrfsDecTestOrderedPending(BtrfsInode inode, long fileOffset, long ioSize, bool uptodate)
    {
        OrderedInodeTree tree = inode.OrderedTree;
        BtrfsOrderedExtent? done = null;
        lock (tree.Lock)
        {
            BtrfsOrderedExtent? entry = LookupContainingLocked(tree, fileOffset);
            if (entry is null)
            {
                return null;
            }

            if (!uptodate)
            {
                entry.SetFlag(OrderedFlag.Ioerr);
            }

            long toDec = Math.Min(ioSize, entry.BytesLeft);
            Debug.Assert(toDec == ioSize, "ordered extent accounting went negative");
            entry.BytesLeft -= toDec;
            if (entry.BytesLeft == 0 && !Bitops.TestAndSetBit(ref entry.FlagsWord, (int)OrderedFlag.IoDone))
            {
                done = entry;
            }
        }

        if (done is not null && done.Wait.Active)
        {
            Kernel.Wait.WakeUpAll(done.Wait);
        }

        return done;
    }

    /// <summary>
    /// btrfs_dec_test_first_ordered_pending(): as <see cref="BtrfsDecTestOrderedPending"/> for the first ordered
    /// extent overlapping [fileOffset, fileOffset + ioSize); <paramref name="fileOffset"/> moves past the part
    /// accounted to it. Runs in I/O completion context.
    /// </summary>
    /// <returns>false if no ordered extent overlaps; <paramref name="done"/> is the extent if this finished it.</returns>
    public static bool BtrfsDecTestFirstOrderedPending(BtrfsInode inode, ref long fileOffset, long ioSize, bool uptodate, out BtrfsOrderedExtent? done)
    {
        OrderedInodeTree tree = inode.OrderedTree;
        done = null;
        lock (tree.Lock)
        {
            int i = tree.FirstEndingAtOrAfterLocked(fileOffset);
            if (i == tree.EntriesLocked.Count || tree.EntriesLocked[i].FileOffset >= fileOffset + ioSize)
            {
                return false;
            }

            BtrfsOrderedExtent entry = tree.EntriesLocked[i];
            long decStart = Math.Max(fileOffset, entry.FileOffset);
            long decEnd = Math.Min(fileOffset + ioSize, entry.FileOffset + entry.Len);
            fileOffset = decEnd;
            if (!uptodate)
            {
                entry.SetFlag(OrderedFlag.Ioerr);
            }

            entry.BytesLeft -= decEnd - decStart;
            if (entry.BytesLeft == 0 && !Bitops.TestAndSetBit(ref entry.FlagsWord, (int)OrderedFlag.IoDone))
            {
                done = entry;
            }
        }

        if (done is not null && done.Wait.Active)
        {
            Kernel.Wait.WakeUpAll(done.Wait);
        }

        return true;
    }

    /// <summary>
    /// btrfs_remove_ordered_extent(): takes the finished extent out of its inode's tree and its root's list,
    /// sets COMPLETE and wakes its waiters.
    /// </summary>
    public static void BtrfsRemoveOrderedExtent(BtrfsInode inode, BtrfsOrderedExtent entry)
    {
        Sched.Point(SchedPoint.OrderedExtent);
        OrderedInodeTree tree = inode.OrderedTree;
        lock (tree.Lock)
        {
            tree.EntriesLocked.Remove(entry);
            entry.SetFlag(OrderedFlag.Complete);
        }

        BtrfsRoot root = inode.Root;
        bool rootEmpty;
        lock (root.OrderedExtentLock)
        {
            root.OrderedExtents.Remove(entry.RootNode!);
            entry.RootNode = null;
            root.NrOrderedExtents--;
            rootEmpty = root.NrOrderedExtents == 0;
        }

        if (rootEmpty)
        {
            BtrfsFsInfo fsInfo = root.FsInfo;
            lock (fsInfo.OrderedRootLock)
            {
                lock (root.OrderedExtentLock)
                {
                    if (root.NrOrderedExtents == 0 && root.OrderedRootNode is not null)
                    {
                        fsInfo.OrderedRoots.Remove(root.OrderedRootNode);
                        root.OrderedRootNode = null;
                    }
                }
            }
        }

        Kernel.Wait.WakeUpAll(entry.Wait);
    }

    /// <summary>btrfs_lookup_ordered_extent(): the ordered extent containing <paramref name="fileOffset"/>, or null.</summary>
    public static BtrfsOrderedExtent? BtrfsLookupOrderedExtent(BtrfsInode inode, long fileOffset)
    {
        lock (inode.OrderedTree.Lock)
        {
            return LookupContainingLocked(inode.OrderedTree, fileOffset);
        }
    }

    /// <summary>btrfs_lookup_ordered_range(): the first ordered extent overlapping [fileOffset, fileOffset + len), or null.</summary>
    public static BtrfsOrderedExtent? BtrfsLookupOrderedRange(BtrfsInode inode, long fileOffset, long len)
    {
        OrderedInodeTree tree = inode.OrderedTree;
        lock (tree.Lock)
        {
            int i = tree.FirstEndingAtOrAfterLocked(fileOffset);
            if (i < tree.EntriesLocked.Count && tree.EntriesLocked[i].FileOffset < fileOffset + len)
            {
                return tree.EntriesLocked[i];
            }

            return null;
        }
    }

    /// <summary>
    /// btrfs_lookup_first_ordered_extent(): the ordered extent containing <paramref name="fileOffset"/>, else the
    /// closest one before it, or null.
    /// </summary>
    public static BtrfsOrderedExtent? BtrfsLookupFirstOrderedExtent(BtrfsInode inode, long fileOffset)
    {
        OrderedInodeTree tree = inode.OrderedTree;
        lock (tree.Lock)
        {
            int i = tree.FirstEndingAtOrAfterLocked(fileOffset);
            if (i < tree.EntriesLocked.Count && tree.EntriesLocked[i].FileOffset <= fileOffset)
            {
                return tree.EntriesLocked[i];
            }

            return i > 0 ? tree.EntriesLocked[i - 1] : null;
        }
    }

    /// <summary>
    /// btrfs_start_ordered_extent(): writes back the extent's pages (filemap_fdatawrite_range, taking their
    /// page locks) unless it is DIRECT, and with <paramref name="wait"/> sleeps until it is COMPLETE.
    /// </summary>
    public static void BtrfsStartOrderedExtent(BtrfsInode inode, BtrfsOrderedExtent entry, bool wait)
    {
        using KFrame frame = KFunc.Enter("btrfs_start_ordered_extent");
        if (!entry.TestFlag(OrderedFlag.Direct))
        {
            PageCache.FilemapFdatawriteRange(inode.Mapping, entry.FileOffset, entry.End);
        }

        if (wait)
        {
            Kernel.Wait.WaitEvent(entry.Wait, static e => e.TestFlag(OrderedFlag.Complete), entry, TaskState.Uninterruptible, entry);
        }
    }

    /// <summary>
    /// btrfs_wait_ordered_range(): writes back and waits for [start, start + len), then waits for every ordered
    /// extent in it, last to first.
    /// </summary>
    /// <returns>0, or -EIO if the writeback or an ordered extent failed.</returns>
    public static int BtrfsWaitOrderedRange(BtrfsInode inode, long start, long len)
    {
        using KFrame frame = KFunc.Enter("btrfs_wait_ordered_range");
        long origEnd = start + len < start || len == long.MaxValue ? long.MaxValue : start + len - 1;
        int ret = PageCache.FilemapFdatawriteRange(inode.Mapping, start, origEnd);
        if (ret != 0)
        {
            return ret;
        }

        int retWb = PageCache.FilemapFdatawaitRange(inode.Mapping, start, origEnd);
        long end = origEnd;
        while (true)
        {
            BtrfsOrderedExtent? ordered = BtrfsLookupFirstOrderedExtent(inode, end);
            if (ordered is null || ordered.FileOffset > origEnd || ordered.FileOffset + ordered.Len <= start)
            {
                break;
            }

            BtrfsStartOrderedExtent(inode, ordered, wait: true);
            end = ordered.FileOffset;
            if (ordered.TestFlag(OrderedFlag.Ioerr))
            {
                ret = -Errno.EIO;
            }

            if (ret != 0 || end == 0 || end == start)
            {
                break;
            }

            end--;
        }

        return retWb != 0 ? retWb : ret;
    }

    /// <summary>
    /// btrfs_wait_ordered_extents(): under root->ordered_extent_mutex, queues a flush work (start and wait for the
    /// ordered extent) on the flush_delalloc workqueue for up to <paramref name="nr"/> ordered extents of the
    /// root (-1: all), then waits for each work's completion in order.
    /// </summary>
    /// <returns>The number of ordered extents waited for.</returns>
    public static int BtrfsWaitOrderedExtents(BtrfsRoot root, int nr)
    {
        using KFrame frame = KFunc.Enter("btrfs_wait_ordered_extents");
        var works = new List<BtrfsOrderedExtent>();
        root.OrderedExtentMutex.Lock();
        try
        {
            BtrfsOrderedExtent[] splice;
            lock (root.OrderedExtentLock)
            {
                splice = new BtrfsOrderedExtent[root.OrderedExtents.Count];
                root.OrderedExtents.CopyTo(splice, 0);
            }

            foreach (BtrfsOrderedExtent ordered in splice)
            {
                if (nr == 0)
                {
                    break;
                }

                root.FsInfo.Workqueues.InitWork(ordered.FlushWork, "btrfs_flush_delalloc_helper", s_runOrderedExtentWork);
                works.Add(ordered);
                AsyncThread.BtrfsQueueWork(root.FsInfo.Workqueues.FlushWorkers, ordered.FlushWork);
                Sched.CondResched();
                if (nr != -1)
                {
                    nr--;
                }
            }

            foreach (BtrfsOrderedExtent ordered in works)
            {
                ordered.Completion.WaitForCompletion();
                Sched.CondResched();
            }
        }
        finally
        {
            root.OrderedExtentMutex.Unlock();
        }

        return works.Count;
    }

    /// <summary>
    /// btrfs_wait_ordered_roots(): under fs_info->ordered_operations_mutex, btrfs_wait_ordered_extents on every
    /// root with ordered extents (up to <paramref name="nr"/> in all; -1: all).
    /// </summary>
    public static void BtrfsWaitOrderedRoots(BtrfsFsInfo fsInfo, int nr)
    {
        using KFrame frame = KFunc.Enter("btrfs_wait_ordered_roots");
        fsInfo.OrderedOperationsMutex.Lock();
        try
        {
            BtrfsRoot[] roots;
            lock (fsInfo.OrderedRootLock)
            {
                roots = new BtrfsRoot[fsInfo.OrderedRoots.Count];
                fsInfo.OrderedRoots.CopyTo(roots, 0);
            }

            foreach (BtrfsRoot root in roots)
            {
                if (nr == 0)
                {
                    break;
                }

                int done = BtrfsWaitOrderedExtents(root, nr);
                if (nr != -1)
                {
                    nr = Math.Max(0, nr - done);
                }
            }
        }
        finally
        {
            fsInfo.OrderedOperationsMutex.Unlock();
        }
    }

    // btrfs_run_ordered_extent_work(): the flush work: start the ordered extent, wait for it, signal the waiter.
    private static void BtrfsRunOrderedExtentWork(OrderedWork work)
    {
        using KFrame frame = KFunc.Enter("btrfs_run_ordered_extent_work");
        BtrfsOrderedExtent ordered = work.Ordered;
        ordered.Completion.ExpectedCompleter = EmuTask.Current;
        BtrfsStartOrderedExtent(ordered.Inode, ordered, wait: true);
        ordered.Completion.Complete();
    }

    // __btrfs_add_ordered_extent()
    private static BtrfsOrderedExtent __BtrfsAddOrderedExtent(BtrfsInode inode, long fileOffset, long start, long len, long diskLen, bool dio)
    {
        var entry = new BtrfsOrderedExtent(inode, fileOffset, start, len, diskLen);
        if (dio)
        {
            entry.SetFlag(OrderedFlag.Direct);
        }

        OrderedInodeTree tree = inode.OrderedTree;
        lock (tree.Lock)
        {
            int i = tree.FirstEndingAtOrAfterLocked(fileOffset);
            if (i < tree.EntriesLocked.Count && tree.EntriesLocked[i].FileOffset <= entry.End)
            {
                // tree_insert() found a duplicate: btrfs_panic in the kernel.
                Klog.Bug($"BTRFS critical: panic in __btrfs_add_ordered_extent: inconsistency in ordered tree at offset {fileOffset} of inode {inode.Ino}", EmuTask.Current);
                throw new InvalidOperationException($"ordered extent at {fileOffset} overlaps {tree.EntriesLocked[i]}");
            }

            tree.EntriesLocked.Insert(i, entry);
        }

        BtrfsRoot root = inode.Root;
        bool first;
        lock (root.OrderedExtentLock)
        {
            entry.RootNode = root.OrderedExtents.AddLast(entry);
            first = root.NrOrderedExtents++ == 0;
        }

        if (first)
        {
            BtrfsFsInfo fsInfo = root.FsInfo;
            lock (fsInfo.OrderedRootLock)
            {
                root.OrderedRootNode ??= fsInfo.OrderedRoots.AddLast(root);
            }
        }

        Sched.Point(SchedPoint.OrderedExtent);
        return entry;
    }

    private static BtrfsOrderedExtent? LookupContainingLocked(OrderedInodeTree tree, long fileOffset)
    {
        int i = tree.FirstEndingAtOrAfterLocked(fileOffset);
        if (i < tree.EntriesLocked.Count && tree.EntriesLocked[i].FileOffset <= fileOffset)
        {
            return tree.EntriesLocked[i];
        }

        return null;
    }
}
