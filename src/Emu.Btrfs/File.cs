// Mirrors: fs/btrfs/file.c (v4.4): btrfs_file_write_iter, __btrfs_buffered_write, prepare_pages,
// prepare_uptodate_page, lock_and_cleanup_extent_if_need, btrfs_copy_from_user, btrfs_dirty_pages,
// btrfs_drop_pages, __btrfs_direct_write, btrfs_sync_file (with start_ordered_ops); and mm/filemap.c
// generic_write_checks.
//
// Model: a buffered write holds the inode's i_mutex and proceeds in chunks of pages. For each chunk it locks
// the pages in ascending order (find_or_create_page, reading a partial first or last page, then waiting for
// each page's writeback while holding its lock), then - only if the chunk starts inside i_size - locks the
// chunk's range in the io tree; if an ordered extent overlaps the range it lets go of the range and of all
// the pages, waits for the ordered extent, and starts the chunk over (-EAGAIN). With the pages (and range)
// held it copies the data in, marks the range delalloc, the pages uptodate and dirty, extends i_size,
// unlocks range and pages, and lets balance_dirty_pages throttle it. Lock order: i_mutex, pages
// (ascending), io-tree range - the order a DIO read reverses in v4.4.
// Differs: no space or metadata reservation, no NODATACOW path, no hole items for writes past EOF (the gap
// reads as a hole), and fsync commits the transaction instead of syncing a log tree.
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>fs/btrfs/file.c: btrfs_file_operations and the buffered write path.</summary>
public static class BtrfsFileOperations
{
    private const int MaxPagesPerChunk = Page.PageSize / 8; // PAGE_CACHE_SIZE / sizeof(struct page *)

    /// <summary>
    /// btrfs_file_write_iter(): under i_mutex, a direct or buffered write at iocb.KiPos; O_DSYNC writes are
    /// then synced.
    /// </summary>
    public static long BtrfsFileWriteIter(ref Kiocb iocb, ref IovIter from)
    {
        using KFrame frame = KFunc.Enter("btrfs_file_write_iter");
        VfsFile file = iocb.KiFilp;
        var inode = (BtrfsInode)file.Inode;
        long numWritten;
        long pos;
        inode.IMutex.Lock();
        try
        {
            long err = GenericWriteChecks(ref iocb, ref from);
            if (err <= 0)
            {
                return err;
            }

            pos = iocb.KiPos;
            if ((iocb.KiFlags & KiocbFlags.Direct) != 0)
            {
                numWritten = __BtrfsDirectWrite(ref iocb, ref from, pos);
            }
            else
            {
                numWritten = __BtrfsBufferedWrite(inode, ref from, pos);
                if (numWritten > 0)
                {
                    iocb.KiPos = pos + numWritten;
                    BtrfsMetrics.NoteBufferedWrite(inode);
                }
            }
        }
        finally
        {
            inode.IMutex.Unlock();
        }

        if (numWritten > 0 && (iocb.KiFlags & KiocbFlags.Dsync) != 0)
        {
            // generic_write_sync() -> vfs_fsync_range()
            int err = BtrfsSyncFile(file, pos, pos + numWritten - 1);
            if (err < 0)
            {
                numWritten = err;
            }
        }

        return numWritten;
    }

    /// <summary>
    /// btrfs_sync_file(): writes back and waits for [start, end] and its ordered extents, then commits the
    /// transaction. -EIO if writeback failed.
    /// </summary>
    public static int BtrfsSyncFile(VfsFile file, long start, long end)
    {
        using KFrame frame = KFunc.Enter("btrfs_sync_file");
        var inode = (BtrfsInode)file.Inode;
        int ret = StartOrderedOps(inode, start, end);
        if (ret != 0)
        {
            return ret;
        }

        inode.IMutex.Lock();
        try
        {
            ret = OrderedData.BtrfsWaitOrderedRange(inode, start, end == long.MaxValue ? long.MaxValue : end - start + 1);
            if (ret != 0)
            {
                return ret;
            }
        }
        finally
        {
            inode.IMutex.Unlock();
        }

        return Transaction.BtrfsCommitTransaction(inode.FsInfo);
    }

    /// <summary>
    /// __btrfs_buffered_write(): copies the user data into the page cache chunk by chunk (see the header).
    /// Called with i_mutex held. Returns the bytes written, or -errno if none were.
    /// </summary>
    public static long __BtrfsBufferedWrite(BtrfsInode inode, ref IovIter i, long pos)
    {
        using KFrame frame = KFunc.Enter("__btrfs_buffered_write");
        AddressSpace mapping = inode.Mapping;
        int nrptrs = (int)Math.Max(8, Math.Min(Math.Min((i.Count + Page.PageSize - 1L) / Page.PageSize, MaxPagesPerChunk), PageWriteback.RatelimitPages));
        var pages = new Page[nrptrs];
        long numWritten = 0;
        int ret = 0;
        bool forcePageUptodate = false;
        while (i.Count > 0)
        {
            int offset = (int)(pos & (Page.PageSize - 1));
            int writeBytes = (int)Math.Min(i.Count, (long)nrptrs * Page.PageSize - offset);
            int numPages = (writeBytes + offset + Page.PageSize - 1) / Page.PageSize;
            bool needUnlock;
            long lockstart = 0;
            long lockend = 0;
            while (true)
            {
                ret = PreparePages(inode, pages, numPages, pos, writeBytes, forcePageUptodate);
                if (ret != 0)
                {
                    break;
                }

                ret = LockAndCleanupExtentIfNeed(inode, pages, numPages, pos, out lockstart, out lockend);
                if (ret != -Errno.EAGAIN)
                {
                    break;
                }
            }

            if (ret < 0)
            {
                break;
            }

            needUnlock = ret > 0;
            ret = 0;
            int copied = BtrfsCopyFromUser(inode, pos, numPages, writeBytes, pages, ref i);
            int dirtyPages;
            if (copied == 0)
            {
                forcePageUptodate = true;
                dirtyPages = 0;
            }
            else
            {
                forcePageUptodate = false;
                dirtyPages = (copied + offset + Page.PageSize - 1) / Page.PageSize;
            }

            if (copied > 0)
            {
                BtrfsDirtyPages(inode, pages, dirtyPages, pos, copied);
            }

            if (needUnlock)
            {
                inode.IoTree.UnlockExtent(lockstart, lockend);
            }

            BtrfsDropPages(pages, numPages);
            Sched.CondResched();
            PageWriteback.BalanceDirtyPagesRatelimited(mapping);
            pos += copied;
            numWritten += copied;
        }

        return numWritten != 0 ? numWritten : ret;
    }

    /// <summary>
    /// lock_and_cleanup_extent_if_need(): with the chunk's pages locked, and only if the chunk starts inside
    /// i_size, locks [start_pos, last_pos] in the io tree; if an ordered extent overlaps, releases the range
    /// and every page, waits for the ordered extent and returns -EAGAIN. Returns 1 with the range held, else 0.
    /// </summary>
    public static int LockAndCleanupExtentIfNeed(BtrfsInode inode, Page[] pages, int numPages, long pos, out long lockstart, out long lockend)
    {
        using KFrame frame = KFunc.Enter("lock_and_cleanup_extent_if_need");
        long startPos = pos & ~((long)inode.FsInfo.SectorSize - 1);
        long lastPos = startPos + ((long)numPages << Page.PageShift) - 1;
        int ret = 0;
        lockstart = 0;
        lockend = 0;
        if (startPos < inode.ISize)
        {
            Sched.Point(SchedPoint.BufferedWriteLockRange, inode);
            inode.IoTree.LockExtentBits(startPos, lastPos);
            BtrfsOrderedExtent? ordered = OrderedData.BtrfsLookupOrderedRange(inode, startPos, lastPos - startPos + 1);
            if (ordered is not null && ordered.FileOffset + ordered.Len > startPos && ordered.FileOffset <= lastPos)
            {
                inode.IoTree.UnlockExtent(startPos, lastPos);
                for (int i = 0; i < numPages; i++)
                {
                    Filemap.UnlockPage(pages[i]);
                    PageCache.PageCacheRelease(pages[i]);
                }

                OrderedData.BtrfsStartOrderedExtent(inode, ordered, wait: true);
                return -Errno.EAGAIN;
            }

            inode.IoTree.ClearExtentBit(startPos, lastPos,
                ExtentBits.Dirty | ExtentBits.Delalloc | ExtentBits.DoAccounting | ExtentBits.Defrag, wake: false, delete: false);
            lockstart = startPos;
            lockend = lastPos;
            ret = 1;
        }

        for (int i = 0; i < numPages; i++)
        {
            if (PageWriteback.ClearPageDirtyForIo(pages[i]))
            {
                PageWriteback.AccountPageRedirty(pages[i]);
            }

            ExtentIo.SetPageExtentMapped(pages[i]);
        }

        return ret;
    }

    /// <summary>
    /// btrfs_dirty_pages(): marks the written range delalloc, its pages uptodate and dirty, and extends i_size.
    /// </summary>
    public static void BtrfsDirtyPages(BtrfsInode inode, Page[] pages, int numPages, long pos, int writeBytes)
    {
        int sectorSize = inode.FsInfo.SectorSize;
        long startPos = pos & ~((long)sectorSize - 1);
        long numBytes = Inode.AlignUp(writeBytes + pos - startPos, sectorSize);
        long endOfLastBlock = startPos + numBytes - 1;
        long endPos = pos + writeBytes;
        Inode.BtrfsSetExtentDelalloc(inode, startPos, endOfLastBlock);
        for (int i = 0; i < numPages; i++)
        {
            Page p = pages[i];
            p.Set(PageFlags.Uptodate);
            p.Clear(ExtentIo.PageChecked);
            PageWriteback.SetPageDirty(p);
        }

        // Only the in-memory size changes here; the on-disk size follows the ordered extents.
        if (endPos > inode.ISize)
        {
            inode.ISizeWrite(endPos);
        }
    }

    // generic_write_checks(): O_APPEND positions at EOF; returns the bytes to write.
    private static long GenericWriteChecks(ref Kiocb iocb, ref IovIter from)
    {
        if (from.Count == 0)
        {
            return 0;
        }

        if ((iocb.KiFlags & KiocbFlags.Append) != 0)
        {
            iocb.KiPos = iocb.KiFilp.Inode.ISize;
        }

        if (iocb.KiPos < 0)
        {
            return -Errno.EINVAL;
        }

        return from.Count;
    }

    // start_ordered_ops(): btrfs_fdatawrite_range.
    private static int StartOrderedOps(BtrfsInode inode, long start, long end) =>
        PageCache.FilemapFdatawriteRange(inode.Mapping, start, end);

    // __btrfs_direct_write(): direct IO, then what it could not do through the page cache, written back and
    // dropped from the cache so a later DIO read sees it on disk.
    private static long __BtrfsDirectWrite(ref Kiocb iocb, ref IovIter from, long pos)
    {
        var inode = (BtrfsInode)iocb.KiFilp.Inode;
        long written = PageCache.GenericFileDirectWrite(ref iocb, ref from);
        if (written < 0 || from.Count == 0)
        {
            return written;
        }

        pos += written;
        long writtenBuffered = __BtrfsBufferedWrite(inode, ref from, pos);
        if (writtenBuffered < 0)
        {
            return written != 0 ? written : writtenBuffered;
        }

        long endbyte = pos + writtenBuffered - 1;
        int err = PageCache.FilemapFdatawriteRange(inode.Mapping, pos, endbyte);
        if (err == 0)
        {
            err = PageCache.FilemapFdatawaitRange(inode.Mapping, pos, endbyte);
        }

        if (err != 0)
        {
            return written != 0 ? written : err;
        }

        written += writtenBuffered;
        iocb.KiPos = pos + writtenBuffered;
        PageCache.InvalidateInodePages2Range(inode.Mapping, pos >> Page.PageShift, endbyte >> Page.PageShift);
        return written;
    }

    // prepare_pages(): locks the chunk's pages in ascending order, reading a partial first/last page, and
    // waits for each page's writeback with its lock held.
    private static int PreparePages(BtrfsInode inode, Page[] pages, int numPages, long pos, int writeBytes, bool forceUptodate)
    {
        using KFrame frame = KFunc.Enter("prepare_pages");
        long index = pos >> Page.PageShift;
        for (int i = 0; i < numPages; i++)
        {
            while (true)
            {
                pages[i] = PageCache.FindOrCreatePage(inode.Mapping, index + i);
                int err = 0;
                if (i == 0)
                {
                    err = PrepareUptodatePage(inode, pages[i], pos, forceUptodate);
                }

                if (err == 0 && i == numPages - 1)
                {
                    err = PrepareUptodatePage(inode, pages[i], pos + writeBytes, false);
                }

                if (err == 0)
                {
                    break;
                }

                PageCache.PageCacheRelease(pages[i]);
                if (err != -Errno.EAGAIN)
                {
                    for (int j = i - 1; j >= 0; j--)
                    {
                        Filemap.UnlockPage(pages[j]);
                        PageCache.PageCacheRelease(pages[j]);
                    }

                    return err;
                }
            }

            Filemap.WaitOnPageWriteback(pages[i]);
        }

        return 0;
    }

    // prepare_uptodate_page(): a page written only in part must be read first. The page stays locked.
    private static int PrepareUptodatePage(BtrfsInode inode, Page page, long pos, bool forceUptodate)
    {
        if (((pos & (Page.PageSize - 1)) != 0 || forceUptodate) && !page.Test(PageFlags.Uptodate))
        {
            int ret = Inode.BtrfsReadpage(inode, page);
            if (ret != 0)
            {
                return ret;
            }

            Filemap.LockPage(page);
            if (!page.Test(PageFlags.Uptodate))
            {
                Filemap.UnlockPage(page);
                return -Errno.EIO;
            }

            if (page.Mapping != inode.Mapping)
            {
                Filemap.UnlockPage(page);
                return -Errno.EAGAIN;
            }
        }

        return 0;
    }

    // btrfs_copy_from_user(): copies into the locked pages; a short copy into a page that is not uptodate
    // counts as nothing copied there.
    private static int BtrfsCopyFromUser(BtrfsInode inode, long pos, int numPages, int writeBytes, Page[] pages, ref IovIter i)
    {
        Zone zone = inode.FsInfo.Zone;
        int totalCopied = 0;
        int pg = 0;
        int offset = (int)(pos & (Page.PageSize - 1));
        while (writeBytes > 0 && pg < numPages)
        {
            int count = Math.Min(Page.PageSize - offset, writeBytes);
            int copied = i.CopyFrom(zone.PageData(pages[pg]).Slice(offset, count));
            i.Advance(copied);
            writeBytes -= copied;
            totalCopied += copied;
            offset += copied;
            if (copied < count)
            {
                break;
            }

            pg++;
            offset = 0;
        }

        return totalCopied;
    }

    // btrfs_drop_pages(): unlocks and releases the chunk's pages.
    private static void BtrfsDropPages(Page[] pages, int numPages)
    {
        for (int i = 0; i < numPages; i++)
        {
            pages[i].Clear(ExtentIo.PageChecked);
            Filemap.UnlockPage(pages[i]);
            PageCache.PageCacheRelease(pages[i]);
            pages[i] = null!;
        }
    }
}
