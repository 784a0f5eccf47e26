// Mirrors: mm/filemap.c (v4.4): find_get_page, find_lock_page, pagecache_get_page (find_or_create_page),
// add_to_page_cache_lru, pagevec_lookup_tag, find_get_pages_contig, __filemap_fdatawrite_range,
// filemap_fdatawrite(_range), filemap_flush, __filemap_fdatawait_range, filemap_fdatawait_range,
// filemap_write_and_wait_range, generic_file_read_iter, do_generic_file_read, generic_file_direct_write,
// mark_page_accessed; and mm/truncate.c invalidate_inode_pages2_range.
//
// Model: the generic page-cache code between the syscalls and the filesystem. Lookups take a page
// reference (released with PageCacheRelease) under mapping->tree_lock; find_or_create_page returns the page
// locked, creating and inserting a new locked page when none exists. Data-integrity writeback is
// do_writepages with WB_SYNC_ALL over a byte range, and waiting for it walks the pages tagged WRITEBACK.
// A buffered read finds or creates each page, has the filesystem read it under the page lock when it is not
// uptodate, and copies out; an O_DIRECT read first writes back and waits on the range, calls ->direct_IO,
// and completes whatever direct IO left undone through the buffered path (the fall-back btrfs relies on).
// Differs: no readahead (each missing page is read on its own); a read stops at i_size before creating pages
// past it; no AOP_TRUNCATED_PAGE or killable waits (Emu has no signals).
using System.Buffers;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>mm/filemap.c: page-cache lookup, data-integrity writeback and the generic read path.</summary>
public static class PageCache
{
    /// <summary>PAGEVEC_SIZE: pages handled per lookup batch.</summary>
    public const int PagevecSize = 14;

    /// <summary>find_get_page(): the page at <paramref name="index"/>, referenced, or null.</summary>
    public static Page? FindGetPage(AddressSpace mapping, long index)
    {
        lock (mapping.TreeLock)
        {
            Page? page = mapping.PageTree.Lookup(index);
            if (page is not null)
            {
                Zone.GetPage(page);
            }

            return page;
        }
    }

    /// <summary>find_lock_page(): the page at <paramref name="index"/>, referenced and locked, or null.</summary>
    public static Page? FindLockPage(AddressSpace mapping, long index)
    {
        while (true)
        {
            Page? page = FindGetPage(mapping, index);
            if (page is null)
            {
                return null;
            }

            Filemap.LockPage(page);
            if (page.Mapping == mapping)
            {
                return page;
            }

            // Truncated or reclaimed while we slept on the lock.
            Filemap.UnlockPage(page);
            PageCacheRelease(page);
        }
    }

    /// <summary>
    /// find_or_create_page() (pagecache_get_page with FGP_LOCK | FGP_ACCESSED | FGP_CREAT): the page at
    /// <paramref name="index"/>, referenced and locked, created (not uptodate) if missing.
    /// </summary>
    public static Page FindOrCreatePage(AddressSpace mapping, long index)
    {
        while (true)
        {
            Page? page = FindLockPage(mapping, index);
            if (page is not null)
            {
                MarkPageAccessed(page);
                return page;
            }

            page = AddNewPage(mapping, index);
            if (page is not null)
            {
                return page;
            }
        }
    }

    /// <summary>page_cache_release() / put_page(): drops a reference from a lookup.</summary>
    public static void PageCacheRelease(Page page) => Zone.PutPage(page);

    /// <summary>mark_page_accessed(): gives the page a second chance in reclaim.</summary>
    public static void MarkPageAccessed(Page page) => page.Set(PageFlags.Referenced);

    /// <summary>
    /// pagevec_lookup_tag(): up to <paramref name="pages"/>.Length referenced pages tagged <paramref name="tag"/>
    /// in [index, end], in index order; <paramref name="index"/> moves past the last one.
    /// </summary>
    public static int PagevecLookupTag(AddressSpace mapping, ref long index, long end, PageCacheTag tag, Span<Page> pages)
    {
        lock (mapping.TreeLock)
        {
            int n = mapping.PageTree.GangLookup(index, end, tag, pages, out long next);
            for (int i = 0; i < n; i++)
            {
                Zone.GetPage(pages[i]);
            }

            if (n != 0)
            {
                index = next;
            }

            return n;
        }
    }

    /// <summary>find_get_pages(): up to <paramref name="pages"/>.Length referenced pages in [index, end], in index order.</summary>
    public static int FindGetPages(AddressSpace mapping, ref long index, long end, Span<Page> pages)
    {
        lock (mapping.TreeLock)
        {
            int n = mapping.PageTree.GangLookup(index, end, null, pages, out long next);
            for (int i = 0; i < n; i++)
            {
                Zone.GetPage(pages[i]);
            }

            if (n != 0)
            {
                index = next;
            }

            return n;
        }
    }

    /// <summary>find_get_pages_contig(): referenced pages at index, index+1, ... up to the first missing one.</summary>
    public static int FindGetPagesContig(AddressSpace mapping, long index, Span<Page> pages)
    {
        lock (mapping.TreeLock)
        {
            int n = 0;
            while (n < pages.Length)
            {
                Page? page = mapping.PageTree.Lookup(index + n);
                if (page is null)
                {
                    break;
                }

                Zone.GetPage(page);
                pages[n++] = page;
            }

            return n;
        }
    }

    /// <summary>
    /// __filemap_fdatawrite_range(): starts writeback of the dirty pages in [start, end] with
    /// <paramref name="syncMode"/> (do_writepages).
    /// </summary>
    public static int __FilemapFdatawriteRange(AddressSpace mapping, long start, long end, WbSyncMode syncMode)
    {
        using KFrame frame = KFunc.Enter("__filemap_fdatawrite_range");
        var wbc = new WritebackControl
        {
            SyncMode = syncMode,
            NrToWrite = long.MaxValue,
            RangeStart = start,
            RangeEnd = end,
        };
        return PageWriteback.DoWritepages(mapping, wbc);
    }

    /// <summary>filemap_fdatawrite_range(): WB_SYNC_ALL writeback of [start, end] (takes every page lock in it).</summary>
    public static int FilemapFdatawriteRange(AddressSpace mapping, long start, long end)
    {
        using KFrame frame = KFunc.Enter("filemap_fdatawrite_range");
        return __FilemapFdatawriteRange(mapping, start, end, WbSyncMode.All);
    }

    /// <summary>filemap_flush(): WB_SYNC_NONE writeback of the whole file.</summary>
    public static int FilemapFlush(AddressSpace mapping)
    {
        using KFrame frame = KFunc.Enter("filemap_flush");
        return __FilemapFdatawriteRange(mapping, 0, long.MaxValue, WbSyncMode.None);
    }

    /// <summary>
    /// filemap_fdatawait_range(): waits for writeback of every page in [startByte, endByte] to end; -EIO if a
    /// page or the mapping recorded an error.
    /// </summary>
    public static int FilemapFdatawaitRange(AddressSpace mapping, long startByte, long endByte)
    {
        using KFrame frame = KFunc.Enter("filemap_fdatawait_range");
        int ret = 0;
        if (endByte >= startByte)
        {
            long index = startByte >> Page.PageShift;
            long end = endByte >> Page.PageShift;
            Page[] pvec = ArrayPool<Page>.Shared.Rent(PagevecSize);
            try
            {
                while (index <= end)
                {
                    int n = PagevecLookupTag(mapping, ref index, end, PageCacheTag.Writeback, pvec.AsSpan(0, PagevecSize));
                    if (n == 0)
                    {
                        break;
                    }

                    for (int i = 0; i < n; i++)
                    {
                        Page page = pvec[i];
                        Filemap.WaitOnPageWriteback(page);
                        if (page.TestAndClear(PageFlags.Error))
                        {
                            ret = -Errno.EIO;
                        }

                        PageCacheRelease(page);
                    }

                    Sched.CondResched();
                }
            }
            finally
            {
                ArrayPool<Page>.Shared.Return(pvec, clearArray: true);
            }
        }

        int ret2 = mapping.CheckErrors();
        return ret != 0 ? ret : ret2;
    }

    /// <summary>filemap_write_and_wait_range(): WB_SYNC_ALL writeback of [start, end], then waits for it.</summary>
    public static int FilemapWriteAndWaitRange(AddressSpace mapping, long start, long end)
    {
        using KFrame frame = KFunc.Enter("filemap_write_and_wait_range");
        int err = 0;
        if (mapping.NrPagesCount != 0)
        {
            err = __FilemapFdatawriteRange(mapping, start, end, WbSyncMode.All);
            // An -EIO from writepages means pages were not even submitted; waiting adds nothing.
            if (err != -Errno.EIO)
            {
                int err2 = FilemapFdatawaitRange(mapping, start, end);
                if (err == 0)
                {
                    err = err2;
                }
            }
        }
        else
        {
            err = mapping.CheckErrors();
        }

        return err;
    }

    /// <summary>
    /// generic_file_read_iter(): O_DIRECT reads write back and wait on the range, then go to ->direct_IO; what
    /// direct IO leaves undone (a short count, e.g. btrfs falling back) is read through the page cache.
    /// </summary>
    public static long GenericFileReadIter(ref Kiocb iocb, ref IovIter iter)
    {
        using KFrame frame = KFunc.Enter("generic_file_read_iter");
        VfsFile file = iocb.KiFilp;
        long retval = 0;
        if (iter.Count == 0)
        {
            return 0;
        }

        if ((iocb.KiFlags & KiocbFlags.Direct) != 0)
        {
            AddressSpace mapping = file.Mapping;
            long size = mapping.Host.ISize;
            retval = FilemapWriteAndWaitRange(mapping, iocb.KiPos, iocb.KiPos + iter.Count - 1);
            if (retval == 0)
            {
                IovIter data = iter;
                retval = mapping.Aops.DirectIO(ref iocb, ref data);
            }

            if (retval > 0)
            {
                iocb.KiPos += retval;
                iter.Advance((int)retval);
            }

            // btrfs can return a short DIO read; only errors, a full read or EOF end the read here.
            if (retval < 0 || iter.Count == 0 || iocb.KiPos >= size)
            {
                return retval;
            }
        }

        return DoGenericFileRead(file, ref iocb.KiPos, ref iter, retval);
    }

    /// <summary>
    /// do_generic_file_read(): copies from the page cache, reading missing or stale pages through -&gt;readpage
    /// under the page lock. Returns <paramref name="written"/> plus the bytes copied, or -errno if none were.
    /// </summary>
    public static long DoGenericFileRead(VfsFile file, ref long ppos, ref IovIter iter, long written)
    {
        using KFrame frame = KFunc.Enter("do_generic_file_read");
        AddressSpace mapping = file.Mapping;
        VfsInode inode = mapping.Host;
        long index = ppos >> Page.PageShift;
        int offset = (int)(ppos & (Page.PageSize - 1));
        int error = 0;
        while (iter.Count > 0)
        {
            Sched.CondResched();
            long isize = inode.ISize;
            if (isize == 0 || index > (isize - 1) >> Page.PageShift)
            {
                break;
            }

            Page? page = FindGetPage(mapping, index);
            if (page is null)
            {
                page = AddNewPage(mapping, index);
                if (page is null)
                {
                    continue;
                }

                error = ReadPageLocked(file, mapping, page);
            }
            else if (!page.Test(PageFlags.Uptodate))
            {
                Filemap.LockPage(page);
                if (page.Mapping != mapping)
                {
                    Filemap.UnlockPage(page);
                    PageCacheRelease(page);
                    continue;
                }

                if (page.Test(PageFlags.Uptodate))
                {
                    Filemap.UnlockPage(page);
                }
                else
                {
                    error = ReadPageLocked(file, mapping, page);
                }
            }

            if (error != 0)
            {
                PageCacheRelease(page);
                if (error == -Errno.EAGAIN)
                {
                    error = 0;
                    continue; // truncated under us: look again
                }

                break;
            }

            // page_ok: i_size may have changed while we read.
            isize = inode.ISize;
            long endIndex = (isize - 1) >> Page.PageShift;
            if (isize == 0 || index > endIndex)
            {
                PageCacheRelease(page);
                break;
            }

            int nr = Page.PageSize;
            if (index == endIndex)
            {
                nr = (int)((isize - 1) & (Page.PageSize - 1)) + 1;
                if (nr <= offset)
                {
                    PageCacheRelease(page);
                    break;
                }
            }

            nr -= offset;
            MarkPageAccessed(page);
            int ret = iter.CopyTo(mapping.Zone.PageData(page).Slice(offset, nr));
            offset += ret;
            index += offset >> Page.PageShift;
            offset &= Page.PageSize - 1;
            PageCacheRelease(page);
            written += ret;
        }

        ppos = (index << Page.PageShift) + offset;
        return written != 0 ? written : error;
    }

    /// <summary>
    /// generic_file_direct_write(): writes back and invalidates the cached range, then calls ->direct_IO; a
    /// range that cannot be invalidated makes it return 0 (the caller falls back to buffered writing).
    /// </summary>
    public static long GenericFileDirectWrite(ref Kiocb iocb, ref IovIter from)
    {
        using KFrame frame = KFunc.Enter("generic_file_direct_write");
        AddressSpace mapping = iocb.KiFilp.Mapping;
        VfsInode inode = mapping.Host;
        long pos = iocb.KiPos;
        int writeLen = from.Count;
        long end = (pos + writeLen - 1) >> Page.PageShift;
        long written = FilemapWriteAndWaitRange(mapping, pos, pos + writeLen - 1);
        if (written != 0)
        {
            return written;
        }

        if (mapping.NrPagesCount != 0)
        {
            written = InvalidateInodePages2Range(mapping, pos >> Page.PageShift, end);
            if (written != 0)
            {
                return written == -Errno.EBUSY ? 0 : written;
            }
        }

        IovIter data = from;
        written = mapping.Aops.DirectIO(ref iocb, ref data);
        if (mapping.NrPagesCount != 0)
        {
            InvalidateInodePages2Range(mapping, pos >> Page.PageShift, end);
        }

        if (written > 0)
        {
            pos += written;
            from.Advance((int)written);
            if (pos > inode.ISize)
            {
                inode.ISizeWrite(pos);
            }

            iocb.KiPos = pos;
        }

        return written;
    }

    /// <summary>
    /// invalidate_inode_pages2_range(): drops the clean cached pages in [start, end] (pages index range),
    /// waiting for their writeback; -EBUSY if a page is dirty or its private state cannot be released.
    /// </summary>
    public static int InvalidateInodePages2Range(AddressSpace mapping, long start, long end)
    {
        using KFrame frame = KFunc.Enter("invalidate_inode_pages2_range");
        int ret = 0;
        long index = start;
        Page[] pvec = ArrayPool<Page>.Shared.Rent(PagevecSize);
        try
        {
            while (index <= end)
            {
                int n = FindGetPages(mapping, ref index, end, pvec.AsSpan(0, PagevecSize));
                if (n == 0)
                {
                    break;
                }

                for (int i = 0; i < n; i++)
                {
                    Page page = pvec[i];
                    Filemap.LockPage(page);
                    Filemap.WaitOnPageWriteback(page);
                    if (page.Mapping == mapping)
                    {
                        if (page.Test(PageFlags.Dirty) ||
                            (page.Test(PageFlags.Private) && !mapping.Aops.ReleasePage(page)) ||
                            !RemoveFromPageCache(mapping, page))
                        {
                            ret = -Errno.EBUSY;
                        }
                    }

                    Filemap.UnlockPage(page);
                    PageCacheRelease(page);
                }

                Sched.CondResched();
            }
        }
        finally
        {
            ArrayPool<Page>.Shared.Return(pvec, clearArray: true);
        }

        return ret;
    }

    /// <summary>
    /// truncate_inode_pages(): drops every page of the mapping (waiting for writeback, discarding dirty data),
    /// as eviction and unmount do.
    /// </summary>
    public static void TruncateInodePages(AddressSpace mapping)
    {
        using KFrame frame = KFunc.Enter("truncate_inode_pages_range");
        long index = 0;
        Page[] pvec = ArrayPool<Page>.Shared.Rent(PagevecSize);
        try
        {
            while (true)
            {
                int n = FindGetPages(mapping, ref index, long.MaxValue, pvec.AsSpan(0, PagevecSize));
                if (n == 0)
                {
                    break;
                }

                for (int i = 0; i < n; i++)
                {
                    Page page = pvec[i];
                    Filemap.LockPage(page);
                    Filemap.WaitOnPageWriteback(page);
                    if (page.Mapping == mapping)
                    {
                        // cancel_dirty_page() + truncate_complete_page()
                        if (page.TestAndClear(PageFlags.Dirty))
                        {
                            mapping.Zone.AccountPageCleaned();
                        }

                        page.Clear(PageFlags.Private | PageFlags.Private2);
                        lock (mapping.TreeLock)
                        {
                            mapping.PageTree.Delete(page.Index);
                            mapping.NrPages--;
                            page.Mapping = null;
                        }

                        mapping.Zone.AccountPageRemoved();
                        Zone.PutPage(page); // the cache's reference
                    }

                    Filemap.UnlockPage(page);
                    PageCacheRelease(page);
                }
            }
        }
        finally
        {
            ArrayPool<Page>.Shared.Return(pvec, clearArray: true);
        }
    }

    // __delete_from_page_cache() for a locked, clean page: unlinks it and drops the cache's reference. False
    // if someone else still references it (invalidate_complete_page2's page_count check).
    internal static bool RemoveFromPageCache(AddressSpace mapping, Page page)
    {
        lock (mapping.TreeLock)
        {
            // Our lookup reference plus the cache's.
            if (Zone.PageCount(page) > 2 || page.Test(PageFlags.Dirty))
            {
                return false;
            }

            mapping.PageTree.Delete(page.Index);
            mapping.NrPages--;
            page.Mapping = null;
        }

        page.Clear(PageFlags.Uptodate);
        mapping.Zone.AccountPageRemoved();
        Zone.PutPage(page);
        return true;
    }

    // page_cache_alloc + add_to_page_cache_lru(): a new locked page with the caller's and the cache's
    // references, or null if another task inserted one first.
    private static Page? AddNewPage(AddressSpace mapping, long index)
    {
        Page page = mapping.Zone.NewCachePage(mapping, index);
        Filemap.TrylockPage(page); // __SetPageLocked on a page nobody else can see yet
        bool inserted;
        lock (mapping.TreeLock)
        {
            inserted = mapping.PageTree.Insert(index, page);
            if (inserted)
            {
                Zone.GetPage(page);
                mapping.NrPages++;
            }
        }

        if (!inserted)
        {
            page.Mapping = null;
            Filemap.UnlockPage(page);
            Zone.PutPage(page);
            return null;
        }

        mapping.Zone.LruAdd(page);
        return page;
    }

    // The readpage: label of do_generic_file_read: the page is locked and not uptodate; returns with it
    // referenced, unlocked and uptodate, or an error.
    private static int ReadPageLocked(VfsFile file, AddressSpace mapping, Page page)
    {
        page.Clear(PageFlags.Error);
        int error = mapping.Aops.ReadPage(file, page);
        if (error != 0)
        {
            return error;
        }

        if (!page.Test(PageFlags.Uptodate))
        {
            // Sleep until the read completes and unlocks the page.
            Filemap.LockPage(page);
            if (!page.Test(PageFlags.Uptodate))
            {
                bool truncated = page.Mapping is null;
                Filemap.UnlockPage(page);
                return truncated ? -Errno.EAGAIN : -Errno.EIO;
            }

            Filemap.UnlockPage(page);
        }

        return 0;
    }
}
