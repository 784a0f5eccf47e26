// Mirrors: fs/btrfs/inode.c (v4.4), the buffered-IO half: btrfs_writepages, btrfs_readpage,
// btrfs_releasepage, btrfs_get_extent, run_delalloc_range, cow_file_range, btrfs_set_extent_delalloc,
// btrfs_writepage_start_hook + btrfs_writepage_fixup_worker, btrfs_writepage_end_io_hook, finish_ordered_fn,
// btrfs_finish_ordered_io (with insert_reserved_file_extent and add_pending_csums), btrfs_submit_bio_hook,
// btrfs_readpage_end_io_hook (__readpage_endio_check), btrfs_start_delalloc_inodes
// (__start_delalloc_inodes, btrfs_run_delalloc_work). The direct-IO half is in Inode.DirectIo.cs.
//
// Model: dirty data is delalloc until writeback reaches it; run_delalloc_range then COWs it: cow_file_range
// reserves new disk space, caches a pinned extent map for it, creates the ordered extent and unlocks the
// run's pages (still dirty) and range. Write bios carry their sectors' checksums to the ordered extent. When
// an ordered extent's last bytes are written, the endio-write worker runs btrfs_finish_ordered_io: it locks
// the range, replaces the file extent items (dropping references to the old extents, which frees them once
// unreferenced), records the checksums, unpins the extent map, unlocks, and removes the ordered extent. An
// I/O error instead returns the new space and leaves the old data in place. Reads verify each sector
// against the csum tree on the endio worker; a mismatch logs "csum failed" and fails the page with -EIO.
// Differs: no inline or compressed extents, no NOCOW/prealloc, no space reservation (ENOSPC surfaces from
// the allocator at writeback), checksums are computed in the submitting task (v4.4 hands them to the
// btrfs-worker queue unless sync_writers is set), and a sector without a checksum is read unverified.
using Emu.Block;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>fs/btrfs/inode.c.</summary>
public static partial class Inode
{
    private static readonly Action<BtrfsWork> s_finishOrderedFn = static w => FinishOrderedFn((OrderedWork)w);
    private static readonly Action<BtrfsWork> s_fixupWorker = static w => BtrfsWritepageFixupWorker((FixupWork)w);
    private static readonly Action<BtrfsWork> s_runDelallocWork = static w => BtrfsRunDelallocWork((DelallocWork)w);

    /// <summary>btrfs_writepages() (-&gt;writepages).</summary>
    public static int BtrfsWritepages(BtrfsInode inode, WritebackControl wbc)
    {
        using KFrame frame = KFunc.Enter("btrfs_writepages");
        return ExtentIo.ExtentWritepages(inode, wbc);
    }

    /// <summary>btrfs_readpage() (-&gt;readpage): the page is locked; it is unlocked when the read completes.</summary>
    public static int BtrfsReadpage(BtrfsInode inode, Page page)
    {
        using KFrame frame = KFunc.Enter("btrfs_readpage");
        return ExtentIo.ExtentReadFullPage(inode, page);
    }

    /// <summary>btrfs_releasepage(): a clean page may be dropped unless its range is locked or under writeback.</summary>
    public static bool BtrfsReleasepage(BtrfsInode inode, Page page)
    {
        if (page.Test(PageFlags.Writeback) || page.Test(PageFlags.Dirty))
        {
            return false;
        }

        if (!ExtentIo.TryReleaseExtentState(inode, page))
        {
            return false;
        }

        page.Clear(PageFlags.Private);
        return true;
    }

    /// <summary>
    /// btrfs_get_extent(): the extent map covering <paramref name="start"/>, from the cache or built from the
    /// file extent items (a hole where there is none) and cached.
    /// </summary>
    public static ExtentMap BtrfsGetExtent(BtrfsInode inode, long start, long len)
    {
        ExtentMapTree tree = inode.ExtentMaps;
        while (true)
        {
            ExtentMap? em = tree.LookupExtentMapping(start, len);
            if (em is not null && em.Start <= start)
            {
                return em;
            }

            // Build a map from start up to the next cached one, so it cannot overlap the cache.
            long cachedStart = em?.Start ?? long.MaxValue;
            if (inode.FileExtents.TryLookup(start, out FileExtentItem item))
            {
                long emEnd = Math.Min(item.End, cachedStart);
                em = item.DiskBytenr == 0
                    ? new ExtentMap(start, emEnd - start, ExtentMap.Hole, 0, start, ExtentMapFlags.None)
                    : new ExtentMap(start, emEnd - start, item.DiskBytenr + item.Offset + (start - item.FileOffset), emEnd - start,
                        item.FileOffset - item.Offset, ExtentMapFlags.None);
            }
            else
            {
                long holeEnd = Math.Min(inode.FileExtents.NextItemStart(start), cachedStart);
                if (holeEnd == long.MaxValue)
                {
                    holeEnd = start + len;
                }

                em = new ExtentMap(start, holeEnd - start, ExtentMap.Hole, 0, start, ExtentMapFlags.Vacancy);
            }

            lock (tree.Lock)
            {
                // Lost a race with another lookup or with cow_file_range: use what is cached now.
                ExtentMap? cached = tree.LookupLocked(start, 1);
                if (cached is not null)
                {
                    return cached;
                }

                if (tree.AddLocked(em))
                {
                    return em;
                }
            }
        }
    }

    /// <summary>btrfs_set_extent_delalloc(): marks [start, end] delalloc (and uptodate) in the io tree.</summary>
    public static void BtrfsSetExtentDelalloc(BtrfsInode inode, long start, long end) => inode.IoTree.SetExtentDelalloc(start, end);

    /// <summary>
    /// run_delalloc_range() (-&gt;fill_delalloc): writes out the locked delalloc run [start, end] (its pages
    /// locked, <paramref name="lockedPage"/> by the caller) by copy-on-write.
    /// </summary>
    public static int RunDelallocRange(BtrfsInode inode, Page lockedPage, long start, long end, ref bool pageStarted, ref long nrWritten) =>
        CowFileRange(inode, lockedPage, start, end, ref pageStarted, ref nrWritten, unlock: true);

    /// <summary>
    /// cow_file_range(): allocates new disk space for [start, end], caches pinned extent maps, creates the
    /// ordered extents, and unlocks the range and its pages but <paramref name="lockedPage"/>, leaving them
    /// dirty for writeback to submit (PAGE_UNLOCK | PAGE_SET_PRIVATE2).
    /// </summary>
    public static int CowFileRange(BtrfsInode inode, Page lockedPage, long start, long end, ref bool pageStarted, ref long nrWritten, bool unlock)
    {
        using KFrame frame = KFunc.Enter("cow_file_range");
        BtrfsFsInfo fsInfo = inode.FsInfo;
        int blocksize = fsInfo.SectorSize;
        long numBytes = Math.Max(blocksize, AlignUp(end - start + 1, blocksize));
        long diskNumBytes = numBytes;
        inode.ExtentMaps.DropExtentCache(start, start + numBytes - 1, skipPinned: false);
        while (diskNumBytes > 0)
        {
            int ret = fsInfo.ExtentRoot.BtrfsReserveExtent(diskNumBytes, blocksize, out long bytenr, out long allocated);
            if (ret < 0)
            {
                Klog.Printk($"BTRFS warning (device {fsInfo.Sb.SId}): cow_file_range: no space for {diskNumBytes} bytes at offset {start} of inode {inode.Ino}");
                ExtentIo.ExtentClearUnlockDelalloc(inode, start, end, lockedPage,
                    ExtentBits.Locked | ExtentBits.DoAccounting | ExtentBits.Delalloc | ExtentBits.Defrag,
                    PageOps.Unlock | PageOps.ClearDirty | PageOps.SetWriteback | PageOps.EndWriteback);
                return ret;
            }

            long ramSize = allocated;
            var em = new ExtentMap(start, ramSize, bytenr, allocated, start, ExtentMapFlags.Pinned);
            while (true)
            {
                bool added;
                lock (inode.ExtentMaps.Lock)
                {
                    added = inode.ExtentMaps.AddLocked(em);
                }

                if (added)
                {
                    break;
                }

                inode.ExtentMaps.DropExtentCache(start, start + ramSize - 1, skipPinned: false);
            }

            BtrfsOrderedExtent ordered = OrderedData.BtrfsAddOrderedExtent(inode, start, bytenr, ramSize, allocated);
            PageOps op = (unlock ? PageOps.Unlock : PageOps.None) | PageOps.SetPrivate2;
            ExtentIo.ExtentClearUnlockDelalloc(inode, start, start + ramSize - 1, lockedPage, ExtentBits.Locked | ExtentBits.Delalloc, op);
            Sched.Point(SchedPoint.CowOrderedExtentCreated, ordered);
            diskNumBytes -= allocated;
            start += allocated;
        }

        return 0;
    }

    /// <summary>
    /// btrfs_writepage_start_hook(): a page about to be written must belong to an ordered extent (PRIVATE2);
    /// one that does not (dirtied behind delalloc's back) goes to the fixup worker. 0, or -EBUSY / -EAGAIN.
    /// </summary>
    public static int BtrfsWritepageStartHook(BtrfsInode inode, Page page)
    {
        if (page.TestAndClear(PageFlags.Private2))
        {
            return 0;
        }

        if (page.Test(ExtentIo.PageChecked))
        {
            return -Errno.EAGAIN;
        }

        page.Set(ExtentIo.PageChecked);
        Zone.GetPage(page);
        var fixup = new FixupWork(inode, page);
        inode.FsInfo.Workqueues.InitWork(fixup, "btrfs_fixup_helper", s_fixupWorker);
        AsyncThread.BtrfsQueueWork(inode.FsInfo.Workqueues.FixupWorkers, fixup);
        return -Errno.EBUSY;
    }

    /// <summary>
    /// btrfs_writepage_end_io_hook(): completion context. Accounts the written bytes to the ordered extent and,
    /// for its last bytes, queues btrfs_finish_ordered_io on the endio-write workers.
    /// </summary>
    public static void BtrfsWritepageEndIoHook(BtrfsInode inode, Page page, long start, long end, bool uptodate)
    {
        page.Clear(PageFlags.Private2);
        BtrfsOrderedExtent? ordered = OrderedData.BtrfsDecTestOrderedPending(inode, start, end - start + 1, uptodate);
        if (ordered is null)
        {
            return;
        }

        QueueFinishOrdered(ordered);
    }

    /// <summary>
    /// btrfs_finish_ordered_io(): the ordered extent's data is on disk (or failed). Records it in the file's
    /// extent items and the csum tree under the range lock, frees what it replaced, and removes the ordered
    /// extent; after an I/O error returns the new space instead.
    /// </summary>
    public static int BtrfsFinishOrderedIo(BtrfsOrderedExtent ordered)
    {
        using KFrame frame = KFunc.Enter("btrfs_finish_ordered_io");
        BtrfsInode inode = ordered.Inode;
        BtrfsFsInfo fsInfo = inode.FsInfo;
        int ret = 0;
        if (ordered.TestFlag(OrderedFlag.Ioerr))
        {
            ret = -Errno.EIO;
        }
        else
        {
            inode.IoTree.LockExtentBits(ordered.FileOffset, ordered.End);
            BtrfsTransaction trans = Transaction.BtrfsJoinTransaction(fsInfo);
            // insert_reserved_file_extent(): the new extent gets its item and replaces what the range held.
            fsInfo.ExtentRoot.BtrfsAllocReservedFileExtent(ordered.Start, ordered.DiskLen);
            inode.FileExtents.ReplaceRange(
                new FileExtentItem(ordered.FileOffset, ordered.Len, ordered.Start, ordered.DiskLen, 0, trans.Transid),
                fsInfo.ExtentRoot);
            inode.ExtentMaps.UnpinExtentCache(ordered.FileOffset, ordered.Len);
            AddPendingCsums(inode, ordered);
            inode.UpdateDiskISize(ordered.FileOffset + ordered.Len);
            inode.IoTree.UnlockExtent(ordered.FileOffset, ordered.End);
            Transaction.BtrfsEndTransaction(trans);
        }

        if (ret != 0)
        {
            inode.IoTree.ClearExtentBit(ordered.FileOffset, ordered.End, ExtentBits.Uptodate, wake: false, delete: false);
            inode.ExtentMaps.DropExtentCache(ordered.FileOffset, ordered.End, skipPinned: false);
            fsInfo.ExtentRoot.BtrfsFreeReservedExtent(ordered.Start, ordered.DiskLen);
            Klog.Printk($"BTRFS warning (device {fsInfo.Sb.SId}): ordered extent [{ordered.FileOffset}, {ordered.End}] of inode {inode.Ino} failed: I/O error, new extent at {ordered.Start} released");
        }

        OrderedData.BtrfsRemoveOrderedExtent(inode, ordered);
        return ret;
    }

    /// <summary>
    /// btrfs_submit_bio_hook(): reads get their checksums looked up and their completion moved to the endio
    /// workers; writes get their checksums computed onto their ordered extents. Then the bio is mapped and
    /// submitted.
    /// </summary>
    public static void BtrfsSubmitBioHook(BtrfsInode inode, Bio bio, long fileOffset)
    {
        BtrfsFsInfo fsInfo = inode.FsInfo;
        if (bio.BiOp == ReqOp.Read)
        {
            BtrfsIoBio ioBio = DiskIo.BtrfsBioWqEndIo(fsInfo, bio, inode);
            BtrfsLookupBioSums(fsInfo, ioBio, bio);
        }
        else
        {
            BtrfsCsumOneBio(inode, bio, fileOffset, contig: false);
        }

        Volumes.BtrfsMapBio(fsInfo, bio);
    }

    /// <summary>
    /// btrfs_csum_one_bio(): the crc32c of every sector of a write bio, attached to the ordered extents the
    /// sectors belong to. With <paramref name="contig"/> the bio's data is one file range from
    /// <paramref name="fileOffset"/> (direct IO); else each page's own offset counts.
    /// </summary>
    public static void BtrfsCsumOneBio(BtrfsInode inode, Bio bio, long fileOffset, bool contig)
    {
        BtrfsFsInfo fsInfo = inode.FsInfo;
        int sectorSize = fsInfo.SectorSize;
        long diskBytenr = bio.BiSector << Blk.SectorShift;
        BtrfsOrderedExtent? ordered = null;
        long sumStart = diskBytenr;
        uint[] sums = new uint[bio.BiSize / sectorSize];
        int sumFirst = 0;
        int n = 0;
        long offset = fileOffset;
        foreach (ref readonly BioVec bvec in bio.Vecs)
        {
            for (uint done = 0; done < bvec.BvLen; done += (uint)sectorSize)
            {
                long sectorOffset = contig ? offset : (bvec.BvPage!.Index << Page.PageShift) + bvec.BvOffset + done;
                if (ordered is null || sectorOffset < ordered.FileOffset || sectorOffset > ordered.End)
                {
                    if (ordered is not null)
                    {
                        OrderedData.BtrfsAddOrderedSum(ordered, new OrderedSum(sumStart, sums[sumFirst..n]));
                    }

                    ordered = OrderedData.BtrfsLookupOrderedExtent(inode, sectorOffset)
                        ?? throw new InvalidOperationException($"BUG: no ordered extent for offset {sectorOffset} of inode {inode.Ino}");
                    sumStart = diskBytenr + (long)n * sectorSize;
                    sumFirst = n;
                }

                sums[n++] = CsumTree.BtrfsCsumData(BioVecSpan(fsInfo, bvec, done, sectorSize));
                offset += sectorSize;
            }
        }

        if (ordered is not null)
        {
            OrderedData.BtrfsAddOrderedSum(ordered, new OrderedSum(sumStart, sums[sumFirst..n]));
        }
    }

    /// <summary>
    /// btrfs_readpage_end_io_hook() / __readpage_endio_check(): verifies one read sector against its expected
    /// checksum; on a mismatch logs "csum failed", poisons the data and returns -EIO.
    /// </summary>
    internal static int BtrfsReadpageEndIoHook(BtrfsIoBio ioBio, int sectorIndex, Span<byte> data, BtrfsInode inode, long fileOffset)
    {
        int sectorSize = inode.FsInfo.SectorSize;
        for (int i = 0; i * sectorSize < data.Length; i++)
        {
            int idx = sectorIndex + i;
            if (ioBio.CsumMissing[idx])
            {
                continue;
            }

            Span<byte> sector = data.Slice(i * sectorSize, sectorSize);
            uint csum = CsumTree.BtrfsCsumData(sector);
            uint expected = ioBio.Csums[idx];
            if (csum != expected)
            {
                Klog.Printk($"BTRFS warning (device {inode.FsInfo.Sb.SId}): csum failed ino {inode.Ino} off {fileOffset + (long)i * sectorSize} csum 0x{csum:x8} expected csum 0x{expected:x8}");
                sector.Fill(1);
                return -Errno.EIO;
            }
        }

        return 0;
    }

    /// <summary>
    /// btrfs_start_delalloc_inodes(): under root->delalloc_mutex, queues a delalloc flush (filemap_flush) for
    /// every inode of the root with delalloc on the flush_delalloc workqueue and waits for each.
    /// </summary>
    /// <returns>The number of inodes flushed.</returns>
    public static int BtrfsStartDelallocInodes(BtrfsRoot root)
    {
        using KFrame frame = KFunc.Enter("btrfs_start_delalloc_inodes");
        var works = new List<DelallocWork>();
        root.DelallocMutex.Lock();
        try
        {
            BtrfsInode[] splice;
            lock (root.DelallocLock)
            {
                splice = new BtrfsInode[root.DelallocInodes.Count];
                root.DelallocInodes.CopyTo(splice, 0);
            }

            foreach (BtrfsInode inode in splice)
            {
                var work = new DelallocWork(inode);
                root.FsInfo.Workqueues.InitWork(work, "btrfs_flush_delalloc_helper", s_runDelallocWork);
                works.Add(work);
                AsyncThread.BtrfsQueueWork(root.FsInfo.Workqueues.FlushWorkers, work);
                Sched.CondResched();
            }

            foreach (DelallocWork work in works)
            {
                using KFrame wait = KFunc.Enter("btrfs_wait_and_free_delalloc_work");
                work.Completion.WaitForCompletion();
            }
        }
        finally
        {
            root.DelallocMutex.Unlock();
        }

        return works.Count;
    }

    // The bytes [offset, offset + len) of a bio vector; len never crosses a page (frame) boundary.
    internal static Span<byte> BioVecSpan(BtrfsFsInfo fsInfo, in BioVec bvec, uint offset, int len)
    {
        if (bvec.BvPage is { } page)
        {
            return fsInfo.Zone.PageData(page).Slice((int)(bvec.BvOffset + offset), len);
        }

        nint address = bvec.Address + (nint)offset;
        return fsInfo.Zone.FrameSpan(address & ~(nint)(Page.PageSize - 1)).Slice((int)(address & (Page.PageSize - 1)), len);
    }

    internal static void QueueFinishOrdered(BtrfsOrderedExtent ordered)
    {
        BtrfsWorkqueues wqs = ordered.Inode.FsInfo.Workqueues;
        wqs.InitWork(ordered.FinishWork, "btrfs_endio_write_helper", s_finishOrderedFn);
        AsyncThread.BtrfsQueueWork(wqs.EndioWriteWorkers, ordered.FinishWork);
    }

    internal static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    // btrfs_lookup_bio_sums(): the expected checksums of a read bio's sectors.
    private static void BtrfsLookupBioSums(BtrfsFsInfo fsInfo, BtrfsIoBio ioBio, Bio bio)
    {
        int count = (int)(bio.BiSize / fsInfo.SectorSize);
        long bytenr = bio.BiSector << Blk.SectorShift;
        fsInfo.CsumRoot.LookupBioSums(bytenr, ioBio.Csums.AsSpan(0, count), ioBio.CsumMissing.AsSpan(0, count));
    }

    // add_pending_csums()
    private static void AddPendingCsums(BtrfsInode inode, BtrfsOrderedExtent ordered)
    {
        OrderedSum[] sums;
        lock (inode.OrderedTree.Lock)
        {
            sums = ordered.Sums.ToArray();
        }

        foreach (OrderedSum sum in sums)
        {
            inode.FsInfo.CsumRoot.BtrfsCsumFileBlocks(sum);
        }
    }

    // finish_ordered_fn(): the endio-write work.
    private static void FinishOrderedFn(OrderedWork work)
    {
        BtrfsOrderedExtent ordered = work.Ordered;
        ordered.Finisher = EmuTask.Current;
        BtrfsFinishOrderedIo(ordered);
    }

    // btrfs_writepage_fixup_worker(): gives a page dirtied outside delalloc an ordered-extent-able state.
    private static void BtrfsWritepageFixupWorker(FixupWork fixup)
    {
        using KFrame frame = KFunc.Enter("btrfs_writepage_fixup_worker");
        Page page = fixup.Page;
        BtrfsInode inode = fixup.Inode;
        Filemap.LockPage(page);
        try
        {
            while (page.Mapping is not null && page.Test(ExtentIo.PageChecked))
            {
                long start = page.Index << Page.PageShift;
                long end = start + Page.PageSize - 1;
                inode.IoTree.LockExtentBits(start, end);
                if (page.Test(PageFlags.Private2))
                {
                    inode.IoTree.UnlockExtent(start, end); // already fixed up by writeback
                    break;
                }

                BtrfsOrderedExtent? ordered = OrderedData.BtrfsLookupOrderedExtent(inode, start);
                if (ordered is not null)
                {
                    inode.IoTree.UnlockExtent(start, end);
                    Filemap.UnlockPage(page);
                    OrderedData.BtrfsStartOrderedExtent(inode, ordered, wait: true);
                    Filemap.LockPage(page);
                    continue;
                }

                BtrfsSetExtentDelalloc(inode, start, end);
                page.Clear(ExtentIo.PageChecked);
                PageWriteback.SetPageDirty(page);
                inode.IoTree.UnlockExtent(start, end);
                break;
            }
        }
        finally
        {
            page.Clear(ExtentIo.PageChecked);
            Filemap.UnlockPage(page);
            PageCache.PageCacheRelease(page);
        }
    }

    // btrfs_run_delalloc_work()
    private static void BtrfsRunDelallocWork(DelallocWork work)
    {
        using KFrame frame = KFunc.Enter("btrfs_run_delalloc_work");
        work.Completion.ExpectedCompleter = EmuTask.Current;
        PageCache.FilemapFlush(work.Inode.Mapping);
        work.Completion.Complete();
    }

    // struct btrfs_writepage_fixup.
    private sealed class FixupWork(BtrfsInode inode, Page page) : BtrfsWork
    {
        public BtrfsInode Inode { get; } = inode;

        public Page Page { get; } = page;
    }

    // struct btrfs_delalloc_work.
    private sealed class DelallocWork(BtrfsInode inode) : BtrfsWork
    {
        public BtrfsInode Inode { get; } = inode;

        public Completion Completion { get; } = new("&work->completion");
    }
}
