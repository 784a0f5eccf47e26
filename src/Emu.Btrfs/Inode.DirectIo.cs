// Mirrors: fs/btrfs/inode.c (v4.4 and v4.6) direct IO: btrfs_direct_IO, check_direct_IO,
// btrfs_get_blocks_direct, lock_extent_direct, btrfs_page_exists_in_range, btrfs_new_extent_direct,
// btrfs_submit_direct (__btrfs_submit_dio_bio), btrfs_endio_direct_read, btrfs_endio_direct_write
// (btrfs_endio_direct_write_update_ordered).
//
// Model: a DIO read takes no i_mutex. For each 4 KiB block, btrfs_get_blocks_direct locks the block's range
// in the io tree (lock_extent_direct), maps it through btrfs_get_extent and returns with the range still
// locked; the range is unlocked by btrfs_endio_direct_read once the block's bio has completed and its
// checksums are verified. lock_extent_direct is where v4.4 and v4.6 differ: finding an ordered extent in the
// range, v4.4 unlocks and waits for it (btrfs_start_ordered_extent, which writes its pages back under their
// page locks) and retries - while earlier blocks of the same read stay locked in the io tree and a buffered
// writer holding those pages waits for exactly those ranges: the ade770294df2 deadlock. v4.6 returns
// -ENOTBLK for a read meeting a buffered-write ordered extent, so direct IO submits and waits for what it
// mapped and the rest of the read goes through the page cache. A DIO write allocates a new extent per call
// (btrfs_new_extent_direct) with a DIRECT ordered extent, unlocks the range at once, and finishes through
// the endio-write workers like buffered writeback.
// Differs: the BtrfsMode switch (fs_info.Mode) in LockExtentDirect selects the v4.4 or v4.6 body; it is read
// nowhere else. User memory is bounced (see DirectIo.cs), so check_direct_IO checks only offset and length.
using Emu.Block;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>struct btrfs_dio_private: one direct-IO bio's file range.</summary>
internal sealed class BtrfsDioPrivate(BtrfsInode inode, long logicalOffset, long bytes, Bio dioBio)
{
    public readonly BtrfsInode Inode = inode;
    public readonly long LogicalOffset = logicalOffset;
    public readonly long Bytes = bytes;
    public readonly Bio DioBio = dioBio;
}

/// <summary>What <see cref="SchedPoint.DioBlockMapped"/> reports: a DIO read block mapped and left locked.</summary>
/// <param name="Inode">The inode read.</param>
/// <param name="Start">First byte of the locked range.</param>
/// <param name="End">Last byte of the locked range (inclusive).</param>
public sealed record DioMappedRange(BtrfsInode Inode, long Start, long End);

public static partial class Inode
{
    private static readonly GetBlockFn s_getBlocksDirect = BtrfsGetBlocksDirect;
    private static readonly DioSubmitFn s_submitDirect = BtrfsSubmitDirect;
    private static readonly Action<Bio> s_endioDirectRead = BtrfsEndioDirectRead;
    private static readonly Action<Bio> s_endioDirectWrite = BtrfsEndioDirectWrite;

    /// <summary>
    /// btrfs_direct_IO() (-&gt;direct_IO): misaligned requests return 0 (buffered fallback); writes within
    /// i_size drop i_mutex for the duration; then __blockdev_direct_IO with btrfs_get_blocks_direct and
    /// btrfs_submit_direct.
    /// </summary>
    public static long BtrfsDirectIO(BtrfsInode inode, ref Kiocb iocb, ref IovIter iter)
    {
        using KFrame frame = KFunc.Enter("btrfs_direct_IO");
        long offset = iocb.KiPos;
        bool write = iter.IsWrite;
        if (CheckDirectIO(inode, offset, iter.Count) != 0)
        {
            return 0;
        }

        bool relock = false;
        if (write && offset + iter.Count <= inode.ISize)
        {
            inode.IMutex.Unlock();
            relock = true;
        }

        try
        {
            return DirectIo.__BlockdevDirectIO(ref iocb, inode, ref iter, write ? ReqOp.Write : ReqOp.Read, s_getBlocksDirect, s_submitDirect);
        }
        finally
        {
            if (relock)
            {
                inode.IMutex.Lock();
            }
        }
    }

    /// <summary>check_direct_IO(): -EINVAL unless offset and length are sector aligned.</summary>
    public static int CheckDirectIO(BtrfsInode inode, long offset, int count)
    {
        long mask = inode.FsInfo.SectorSize - 1;
        return (offset & mask) != 0 || (count & mask) != 0 ? -Errno.EINVAL : 0;
    }

    /// <summary>
    /// btrfs_get_blocks_direct() (get_block_t): locks and maps the block at <paramref name="iblock"/> (reads:
    /// one sector; writes: a new extent for the whole rest). A mapped read block stays locked in the io tree
    /// until its bio completes; -ENOTBLK when lock_extent_direct says to fall back to buffered IO.
    /// </summary>
    public static int BtrfsGetBlocksDirect(VfsInode vfsInode, long iblock, ref BufferHead bhResult, bool create)
    {
        using KFrame frame = KFunc.Enter("btrfs_get_blocks_direct");
        var inode = (BtrfsInode)vfsInode;
        long start = iblock << Page.PageShift;
        long len = bhResult.BSize;
        ExtentBits unlockBits = ExtentBits.Locked;
        if (create)
        {
            unlockBits |= ExtentBits.Dirty;
        }
        else
        {
            len = Math.Min(len, inode.FsInfo.SectorSize);
        }

        long lockstart = start;
        long lockend = start + len - 1;
        if (LockExtentDirect(inode, lockstart, lockend, create) != 0)
        {
            return -Errno.ENOTBLK;
        }

        ExtentMap em = BtrfsGetExtent(inode, start, len);
        if (!create && em.IsHole)
        {
            // A good old-fashioned hole: unmapped, nothing stays locked.
            inode.IoTree.ClearExtentBit(lockstart, lockend, unlockBits, wake: true, delete: false);
            return 0;
        }

        if (!create)
        {
            len = Math.Min(len, em.Len - (start - em.Start));
            lockstart = start + len;
        }
        else
        {
            len = bhResult.BSize;
            int ret = BtrfsNewExtentDirect(inode, start, len, out em);
            if (ret != 0)
            {
                inode.IoTree.ClearExtentBit(lockstart, lockend, unlockBits, wake: true, delete: false);
                return ret;
            }

            len = Math.Min(len, em.Len - (start - em.Start));
        }

        bhResult.BBlocknr = (em.BlockStart + (start - em.Start)) >> Page.PageShift;
        bhResult.BSize = len;
        bhResult.Mapped = true;
        if (create)
        {
            bhResult.New = true;
            // i_size changes under the range lock so buffered readers see it once the range is unlocked.
            if (start + len > inode.ISize)
            {
                inode.ISizeWrite(start + len);
            }
        }

        // Writes unlock the whole range; reads only the unused tail (none for one sector).
        if (lockstart < lockend)
        {
            inode.IoTree.ClearExtentBit(lockstart, lockend, unlockBits, wake: true, delete: false);
        }

        if (!create && Sched.PointDetailHooked)
        {
            Sched.Point(SchedPoint.DioBlockMapped, new DioMappedRange(inode, start, start + len - 1));
        }

        return 0;
    }

    /// <summary>
    /// lock_extent_direct(): locks [lockstart, lockend] with no ordered extent in it (and, for writes, no cached
    /// page). What happens when an ordered extent is found is the one place the two modes differ: v4.4
    /// (<see cref="BtrfsMode.Unpatched"/>) always waits for it and retries; v4.6 (<see cref="BtrfsMode.Patched"/>,
    /// ade770294df2) returns -ENOTBLK when a read meets an ordered extent of a buffered write.
    /// </summary>
    /// <returns>0 with the range locked, or an error with nothing locked.</returns>
    public static int LockExtentDirect(BtrfsInode inode, long lockstart, long lockend, bool writing)
    {
        BtrfsMode mode = inode.FsInfo.Mode;
        int ret = 0;
        while (true)
        {
            inode.IoTree.LockExtentBits(lockstart, lockend);
            // The whole range must be free of ordered extents, and for writes of cached pages too (a write
            // could race with the invalidation in generic_file_direct_write; reads after it must not see stale data).
            BtrfsOrderedExtent? ordered = OrderedData.BtrfsLookupOrderedRange(inode, lockstart, lockend - lockstart + 1);
            if (ordered is null && (!writing || !BtrfsPageExistsInRange(inode, lockstart, lockend)))
            {
                break;
            }

            if (ordered is not null)
            {
                Sched.Point(SchedPoint.LockExtentDirectOrdered, ordered);
            }

            inode.IoTree.UnlockExtent(lockstart, lockend);
            if (ordered is not null)
            {
                if (mode == BtrfsMode.Unpatched || writing || ordered.TestFlag(OrderedFlag.Direct))
                {
                    OrderedData.BtrfsStartOrderedExtent(inode, ordered, wait: true);
                }
                else
                {
                    // v4.6: a DIO read waiting for a buffered write's ordered extent can deadlock on page locks
                    // (this read may hold earlier ranges locked while a buffered writer holds their pages and
                    // waits for those ranges); fall back to a buffered read instead.
                    ret = -Errno.ENOTBLK;
                    BtrfsMetrics.NoteDioReadFallback(inode);
                }
            }
            else if (mode == BtrfsMode.Unpatched)
            {
                // v4.4 "Screw you mmap": write back, wait, and invalidate the cached pages, then retry.
                ret = PageCache.FilemapFdatawriteRange(inode.Mapping, lockstart, lockend);
                if (ret == 0)
                {
                    ret = PageCache.FilemapFdatawaitRange(inode.Mapping, lockstart, lockend);
                }

                if (ret == 0)
                {
                    ret = PageCache.InvalidateInodePages2Range(inode.Mapping, lockstart >> Page.PageShift, lockend >> Page.PageShift);
                }
            }
            else
            {
                // v4.5+: writing back and invalidating here can deadlock with readpages; fall back instead.
                ret = -Errno.ENOTBLK;
            }

            if (ret != 0)
            {
                break;
            }

            Sched.CondResched();
        }

        return ret;
    }

    /// <summary>btrfs_page_exists_in_range(): whether any page of [start, end] is in the page cache.</summary>
    public static bool BtrfsPageExistsInRange(BtrfsInode inode, long start, long end)
    {
        AddressSpace mapping = inode.Mapping;
        lock (mapping.TreeLock)
        {
            return mapping.PageTree.AnyInRange(start >> Page.PageShift, end >> Page.PageShift);
        }
    }

    /// <summary>
    /// btrfs_new_extent_direct(): reserves a new extent for a DIO write at <paramref name="start"/>, caches its
    /// pinned extent map and creates its DIRECT ordered extent.
    /// </summary>
    public static int BtrfsNewExtentDirect(BtrfsInode inode, long start, long len, out ExtentMap em)
    {
        BtrfsFsInfo fsInfo = inode.FsInfo;
        int ret = fsInfo.ExtentRoot.BtrfsReserveExtent(len, fsInfo.SectorSize, out long bytenr, out long allocated);
        if (ret != 0)
        {
            em = null!;
            return ret;
        }

        // create_pinned_em()
        em = new ExtentMap(start, allocated, bytenr, allocated, start, ExtentMapFlags.Pinned);
        while (true)
        {
            inode.ExtentMaps.DropExtentCache(start, start + allocated - 1, skipPinned: false);
            lock (inode.ExtentMaps.Lock)
            {
                if (inode.ExtentMaps.AddLocked(em))
                {
                    break;
                }
            }
        }

        OrderedData.BtrfsAddOrderedExtentDio(inode, start, bytenr, allocated, allocated);
        return 0;
    }

    /// <summary>
    /// btrfs_submit_direct() (dio_submit_t): sends a direct-IO bio's range to disk as a btrfs bio. Reads complete
    /// on the endio workers (btrfs_endio_direct_read); writes carry their checksums to their ordered extents and
    /// complete in completion context (btrfs_endio_direct_write).
    /// </summary>
    public static void BtrfsSubmitDirect(Bio dioBio, VfsInode vfsInode, long fileOffset)
    {
        using KFrame frame = KFunc.Enter("btrfs_submit_direct");
        var inode = (BtrfsInode)vfsInode;
        BtrfsFsInfo fsInfo = inode.FsInfo;
        var dip = new BtrfsDioPrivate(inode, fileOffset, dioBio.BiSize, dioBio);
        // btrfs_bio_clone(): the btrfs bio shares the direct-IO bio's memory.
        Bio bio = Bio.Alloc(dioBio.BiVcnt);
        bio.BiOp = dioBio.BiOp;
        bio.BiSector = dioBio.BiSector;
        foreach (ref readonly BioVec bvec in dioBio.Vecs)
        {
            bio.AddBuffer(bvec.Address, bvec.BvLen);
        }

        bio.BiPrivate = dip;
        if (dioBio.BiOp == ReqOp.Write)
        {
            bio.BiEndIo = s_endioDirectWrite;
            BtrfsCsumOneBio(inode, bio, fileOffset, contig: true);
        }
        else
        {
            bio.BiEndIo = s_endioDirectRead;
            BtrfsIoBio ioBio = DiskIo.BtrfsBioWqEndIo(fsInfo, bio, inode);
            BtrfsLookupBioSums(fsInfo, ioBio, bio);

            // From here the range btrfs_get_blocks_direct kept locked is released by btrfs_endio_direct_read,
            // not by the reader, which may go on to a buffered fallback: until now, the reader held it.
            inode.IoTree.ExtentLockHandOffToIo(fileOffset, fileOffset + dioBio.BiSize - 1);
        }

        Volumes.BtrfsMapBio(fsInfo, bio);
    }

    // btrfs_endio_direct_read(): on the endio worker: verify the checksums, unlock the range the read kept
    // locked since btrfs_get_blocks_direct, and complete the direct-IO bio.
    private static void BtrfsEndioDirectRead(Bio bio)
    {
        using KFrame frame = KFunc.Enter("btrfs_endio_direct_read");
        BtrfsIoBio ioBio = BtrfsIoBio.From(bio);
        var dip = (BtrfsDioPrivate)ioBio.Private!;
        BtrfsInode inode = dip.Inode;
        int err = bio.BiError;
        if (err == 0)
        {
            int sectorSize = inode.FsInfo.SectorSize;
            int sector = 0;
            foreach (ref readonly BioVec bvec in bio.Vecs)
            {
                for (uint done = 0; done < bvec.BvLen && err == 0; done += (uint)sectorSize, sector++)
                {
                    Span<byte> data = BioVecSpan(inode.FsInfo, bvec, done, sectorSize);
                    if (BtrfsReadpageEndIoHook(ioBio, sector, data, inode, dip.LogicalOffset + (long)sector * sectorSize) != 0)
                    {
                        err = -Errno.EIO;
                    }
                }
            }
        }

        inode.IoTree.UnlockExtent(dip.LogicalOffset, dip.LogicalOffset + dip.Bytes - 1);
        DirectIo.DioEndIo(dip.DioBio, err);
        ioBio.Release();
        bio.Put();
    }

    // btrfs_endio_direct_write(): completion context: account the written bytes to the ordered extents (queueing
    // finish_ordered_fn for each one done), then complete the direct-IO bio.
    private static void BtrfsEndioDirectWrite(Bio bio)
    {
        var dip = (BtrfsDioPrivate)bio.BiPrivate!;
        bool uptodate = bio.BiError == 0;
        long orderedOffset = dip.LogicalOffset;
        long end = dip.LogicalOffset + dip.Bytes;
        while (orderedOffset < end)
        {
            if (!OrderedData.BtrfsDecTestFirstOrderedPending(dip.Inode, ref orderedOffset, end - orderedOffset, uptodate, out BtrfsOrderedExtent? done))
            {
                break;
            }

            if (done is not null)
            {
                QueueFinishOrdered(done);
            }
        }

        DirectIo.DioEndIo(dip.DioBio, bio.BiError);
        bio.Put();
    }
}
