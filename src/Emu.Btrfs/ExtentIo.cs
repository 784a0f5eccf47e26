// Mirrors: fs/btrfs/extent_io.c (v4.4), the page side: extent_writepages, extent_write_cache_pages,
// flush_epd_write_bio, __extent_writepage, writepage_delalloc, __extent_writepage_io, update_nr_written,
// find_lock_delalloc_range, lock_delalloc_pages, __unlock_for_delalloc, extent_clear_unlock_delalloc,
// submit_extent_page, submit_one_bio, end_bio_extent_writepage, end_extent_writepage,
// extent_read_full_page, __extent_read_full_page, __do_readpage, end_bio_extent_readpage,
// set_page_extent_mapped, try_release_extent_state.
//
// Model: writeback walks the mapping's DIRTY (or, for WB_SYNC_ALL, TOWRITE) pages in index order. For each
// page it takes the page lock (trylock first; if that fails it submits the bio built so far and sleeps in
// lock_page: this blocking lock_page is where the flusher and the v4.4 DIO reader get stuck), skips pages
// no longer dirty, clears the dirty bit and writes the page. Writing a page whose range is still delalloc
// first runs delalloc for the delalloc run starting there: it locks the run's following pages (blocking,
// ascending) and its io-tree range, then cow_file_range allocates disk space, creates the ordered extent and
// unlocks the following pages again without cleaning them (PAGE_UNLOCK | PAGE_SET_PRIVATE2): those pages are
// written later in the same pass, or by a later one. The page itself is marked writeback, added to a bio
// (contiguous pages share one), and unlocked; when the bio completes (completion context) each page's
// ordered-extent accounting is updated and its writeback ended. Reading a page locks its io-tree range,
// waits for any ordered extent over it, then reads it (holes are zero-filled) with the range kept locked
// until the read bio completes on the endio worker, which verifies checksums.
// Differs: the sector size equals the page size (one block per page); no compressed or inline extents; no
// readahead (one page per read bio).
using System.Buffers;
using Emu.Block;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>extent_clear_unlock_delalloc() page operations (PAGE_* in extent_io.h).</summary>
[Flags]
public enum PageOps
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>PAGE_UNLOCK.</summary>
    Unlock = 1 << 0,

    /// <summary>PAGE_CLEAR_DIRTY.</summary>
    ClearDirty = 1 << 1,

    /// <summary>PAGE_SET_WRITEBACK.</summary>
    SetWriteback = 1 << 2,

    /// <summary>PAGE_END_WRITEBACK.</summary>
    EndWriteback = 1 << 3,

    /// <summary>PAGE_SET_PRIVATE2: the page belongs to an ordered extent.</summary>
    SetPrivate2 = 1 << 4,

    /// <summary>PAGE_SET_ERROR.</summary>
    SetError = 1 << 5,
}

/// <summary>struct extent_page_data: the bio a writeback pass is building.</summary>
internal sealed class ExtentPageData(BtrfsInode inode, bool syncIo)
{
    public readonly BtrfsInode Inode = inode;
    public readonly bool SyncIo = syncIo;
    public Bio? Bio;
}

/// <summary>fs/btrfs/extent_io.c: page writeback, delalloc locking, and page reads.</summary>
public static class ExtentIo
{
    /// <summary>BTRFS_MAX_EXTENT_SIZE: the largest delalloc run written as one extent.</summary>
    public const long BtrfsMaxExtentSize = 128L * 1024 * 1024;

    /// <summary>PG_checked (PG_owner_priv_1): btrfs marks pages queued for the writepage fixup worker.</summary>
    internal const PageFlags PageChecked = (PageFlags)(1L << 8);

    private static readonly Action<Bio> s_endBioExtentWritepage = EndBioExtentWritepage;
    private static readonly Action<Bio> s_endBioExtentReadpage = EndBioExtentReadpage;

    /// <summary>extent_writepages(): writes the mapping's dirty pages as <paramref name="wbc"/> asks.</summary>
    public static int ExtentWritepages(BtrfsInode inode, WritebackControl wbc)
    {
        using KFrame frame = KFunc.Enter("extent_writepages");
        var epd = new ExtentPageData(inode, wbc.SyncMode == WbSyncMode.All);
        int ret = ExtentWriteCachePages(inode, wbc, epd);
        FlushEpdWriteBio(epd);
        return ret;
    }

    /// <summary>extent_read_full_page(): reads a locked page; it is unlocked when the read completes.</summary>
    public static int ExtentReadFullPage(BtrfsInode inode, Page page)
    {
        Bio? bio = null;
        int ret = __ExtentReadFullPage(inode, page, ref bio);
        if (bio is not null)
        {
            SubmitOneBio(inode, bio);
        }

        return ret;
    }

    /// <summary>set_page_extent_mapped(): marks the page as carrying btrfs state (PG_private).</summary>
    public static void SetPageExtentMapped(Page page) => page.Set(PageFlags.Private);

    /// <summary>
    /// extent_clear_unlock_delalloc(): clears <paramref name="clearBits"/> on [start, end] (waking sleepers),
    /// then applies <paramref name="pageOps"/> to the range's pages except <paramref name="lockedPage"/> (which
    /// only gets PRIVATE2).
    /// </summary>
    public static void ExtentClearUnlockDelalloc(BtrfsInode inode, long start, long end, Page? lockedPage, ExtentBits clearBits, PageOps pageOps)
    {
        inode.IoTree.ClearExtentBit(start, end, clearBits, wake: true, delete: false);
        if (pageOps == PageOps.None)
        {
            return;
        }

        AddressSpace mapping = inode.Mapping;
        if ((pageOps & PageOps.SetError) != 0)
        {
            mapping.SetError(-Errno.EIO);
        }

        long index = start >> Page.PageShift;
        long endIndex = end >> Page.PageShift;
        Page[] pages = ArrayPool<Page>.Shared.Rent(16);
        try
        {
            while (index <= endIndex)
            {
                int ret = PageCache.FindGetPagesContig(mapping, index, pages.AsSpan(0, (int)Math.Min(16, endIndex - index + 1)));
                if (ret == 0)
                {
                    break; // the kernel's loop would stop making progress here too: the page is gone
                }

                for (int i = 0; i < ret; i++)
                {
                    Page page = pages[i];
                    if ((pageOps & PageOps.SetPrivate2) != 0)
                    {
                        page.Set(PageFlags.Private2);
                    }

                    if (page != lockedPage)
                    {
                        if ((pageOps & PageOps.ClearDirty) != 0)
                        {
                            PageWriteback.ClearPageDirtyForIo(page);
                        }

                        if ((pageOps & PageOps.SetWriteback) != 0)
                        {
                            PageWriteback.SetPageWriteback(page);
                        }

                        if ((pageOps & PageOps.SetError) != 0)
                        {
                            page.Set(PageFlags.Error);
                        }

                        if ((pageOps & PageOps.EndWriteback) != 0)
                        {
                            PageWriteback.EndPageWriteback(page);
                        }

                        if ((pageOps & PageOps.Unlock) != 0)
                        {
                            Filemap.UnlockPage(page);
                        }
                    }

                    PageCache.PageCacheRelease(page);
                }

                index += ret;
                Sched.CondResched();
            }
        }
        finally
        {
            ArrayPool<Page>.Shared.Return(pages, clearArray: true);
        }
    }

    /// <summary>
    /// try_release_extent_state(): a clean page can drop its io-tree state unless part of its range is locked
    /// or under writeback; everything but LOCKED and NODATASUM is cleared.
    /// </summary>
    internal static bool TryReleaseExtentState(BtrfsInode inode, Page page)
    {
        long start = page.Index << Page.PageShift;
        long end = start + Page.PageSize - 1;
        if (inode.IoTree.TestRangeBit(start, end, ExtentBits.IoBits, filled: false))
        {
            return false;
        }

        inode.IoTree.ClearExtentBit(start, end, ~(ExtentBits.Locked | ExtentBits.Nodatasum), wake: false, delete: false);
        return true;
    }

    // extent_write_cache_pages(): the per-page writeback loop.
    private static int ExtentWriteCachePages(BtrfsInode inode, WritebackControl wbc, ExtentPageData epd)
    {
        using KFrame frame = KFunc.Enter("extent_write_cache_pages");
        AddressSpace mapping = inode.Mapping;
        int err = 0;
        bool nrToWriteDone = false;
        bool scanned = false;
        long index;
        long end;
        if (wbc.RangeCyclic)
        {
            index = mapping.WritebackIndex;
            end = long.MaxValue;
        }
        else
        {
            index = wbc.RangeStart >> Page.PageShift;
            end = wbc.RangeEnd >> Page.PageShift;
            scanned = true;
        }

        PageCacheTag tag = wbc.SyncMode == WbSyncMode.All ? PageCacheTag.Towrite : PageCacheTag.Dirty;
        Page[] pvec = ArrayPool<Page>.Shared.Rent(PageCache.PagevecSize);
        try
        {
            while (true)
            {
                if (tag == PageCacheTag.Towrite)
                {
                    PageWriteback.TagPagesForWriteback(mapping, index, end);
                }

                int nrPages;
                while (!nrToWriteDone && index <= end &&
                       (nrPages = PageCache.PagevecLookupTag(mapping, ref index, end, tag, pvec.AsSpan(0, PageCache.PagevecSize))) != 0)
                {
                    scanned = true;
                    for (int i = 0; i < nrPages; i++)
                    {
                        Page page = pvec[i];
                        if (Sched.PointDetailHooked)
                        {
                            Sched.Point(SchedPoint.WritepagesNextPage, page);
                        }

                        // The page may have been truncated or reclaimed meanwhile; lock it, then check.
                        if (!Filemap.TrylockPage(page))
                        {
                            FlushEpdWriteBio(epd);
                            Filemap.LockPage(page);
                        }

                        if (page.Mapping != mapping)
                        {
                            Filemap.UnlockPage(page);
                            continue;
                        }

                        if (wbc.SyncMode != WbSyncMode.None)
                        {
                            if (page.Test(PageFlags.Writeback))
                            {
                                FlushEpdWriteBio(epd);
                            }

                            Filemap.WaitOnPageWriteback(page);
                        }

                        if (page.Test(PageFlags.Writeback) || !PageWriteback.ClearPageDirtyForIo(page))
                        {
                            Filemap.UnlockPage(page);
                            continue;
                        }

                        int ret = __ExtentWritepage(inode, page, wbc, epd);
                        if (err == 0 && ret < 0)
                        {
                            err = ret;
                        }

                        // The filesystem may raise nr_to_write (writepage_delalloc does); honour the new value.
                        nrToWriteDone = wbc.NrToWrite <= 0;
                    }

                    for (int i = 0; i < nrPages; i++)
                    {
                        PageCache.PageCacheRelease(pvec[i]);
                        pvec[i] = null!;
                    }

                    Sched.CondResched();
                }

                if (!scanned && err == 0)
                {
                    // Hit the end of the file with work left: wrap back to the start.
                    scanned = true;
                    index = 0;
                    continue;
                }

                return err;
            }
        }
        finally
        {
            ArrayPool<Page>.Shared.Return(pvec, clearArray: true);
        }
    }

    // flush_epd_write_bio(): submits the bio being built.
    private static void FlushEpdWriteBio(ExtentPageData epd)
    {
        Bio? bio = epd.Bio;
        if (bio is not null)
        {
            epd.Bio = null;
            SubmitOneBio(epd.Inode, bio);
        }
    }

    // __extent_writepage(): the page is locked and was dirty. Returns 0 or -errno; the page is unlocked.
    private static int __ExtentWritepage(BtrfsInode inode, Page page, WritebackControl wbc, ExtentPageData epd)
    {
        long start = page.Index << Page.PageShift;
        long pageEnd = start + Page.PageSize - 1;
        long iSize = inode.ISize;
        long endIndex = iSize >> Page.PageShift;
        int pgOffset = (int)(iSize & (Page.PageSize - 1));
        page.Clear(PageFlags.Error);
        if (page.Index > endIndex || (page.Index == endIndex && pgOffset == 0))
        {
            // Entirely past EOF (truncated under us): drop its state (invalidatepage) and forget it.
            inode.IoTree.ClearExtentBit(start, pageEnd, ExtentBits.Dirty | ExtentBits.Delalloc | ExtentBits.DoAccounting, wake: true, delete: false);
            Filemap.UnlockPage(page);
            return 0;
        }

        if (page.Index == endIndex)
        {
            inode.FsInfo.Zone.PageData(page)[pgOffset..].Clear();
        }

        SetPageExtentMapped(page);
        long nrWritten = 0;
        int ret = WritepageDelalloc(inode, page, wbc, start, ref nrWritten);
        if (ret == 1)
        {
            return 0;
        }

        int nr = 0;
        if (ret == 0)
        {
            ret = __ExtentWritepageIo(inode, page, wbc, epd, iSize, nrWritten, ref nr);
            if (ret == 1)
            {
                return 0;
            }
        }

        if (nr == 0)
        {
            // Make sure the mapping's DIRTY tag for the page is cleared.
            PageWriteback.SetPageWriteback(page);
            PageWriteback.EndPageWriteback(page);
        }

        if (page.Test(PageFlags.Error))
        {
            ret = ret < 0 ? ret : -Errno.EIO;
            EndExtentWritepage(page, ret, start, pageEnd);
        }

        Filemap.UnlockPage(page);
        return ret;
    }

    // writepage_delalloc(): runs delalloc for every delalloc run starting in the page. Returns 0 (page still
    // locked), 1 (IO started and page unlocked) or -errno.
    private static int WritepageDelalloc(BtrfsInode inode, Page page, WritebackControl wbc, long delallocStart, ref long nrWritten)
    {
        long pageEnd = delallocStart + Page.PageSize - 1;
        long delallocToWrite = 0;
        long delallocEnd = 0;
        bool pageStarted = false;
        while (delallocEnd < pageEnd)
        {
            int nrDelalloc = FindLockDelallocRange(inode, page, ref delallocStart, out delallocEnd, BtrfsMaxExtentSize);
            if (nrDelalloc == 0)
            {
                if (delallocEnd == long.MaxValue)
                {
                    break;
                }

                delallocStart = delallocEnd + 1;
                continue;
            }

            int ret = Inode.RunDelallocRange(inode, page, delallocStart, delallocEnd, ref pageStarted, ref nrWritten);
            if (ret != 0)
            {
                page.Set(PageFlags.Error);
                return ret < 0 ? ret : -Errno.EIO;
            }

            delallocToWrite += (delallocEnd - delallocStart + Page.PageSize) >> Page.PageShift;
            delallocStart = delallocEnd + 1;
        }

        if (wbc.NrToWrite < delallocToWrite)
        {
            long thresh = delallocToWrite < 8192 * 2 ? delallocToWrite : 8192;
            wbc.NrToWrite = Math.Min(delallocToWrite, thresh);
        }

        if (pageStarted)
        {
            wbc.NrToWrite -= nrWritten;
            return 1;
        }

        return 0;
    }

    // __extent_writepage_io(): maps the page to disk through its extent map, marks it writeback and adds it to
    // the pass's bio. Returns 0 (page still locked) or 1 (the start hook sent it to the fixup worker).
    private static int __ExtentWritepageIo(BtrfsInode inode, Page page, WritebackControl wbc, ExtentPageData epd, long iSize, long nrWritten, ref int nr)
    {
        long start = page.Index << Page.PageShift;
        long pageEnd = start + Page.PageSize - 1;
        int ret = Inode.BtrfsWritepageStartHook(inode, page);
        if (ret != 0)
        {
            if (ret == -Errno.EBUSY)
            {
                wbc.PagesSkipped++;
            }
            else
            {
                PageWriteback.RedirtyPageForWritepage(wbc, page);
            }

            UpdateNrWritten(page, wbc, nrWritten);
            Filemap.UnlockPage(page);
            return 1;
        }

        // Do not touch the inode after unlocking the page: update the writeback index now.
        UpdateNrWritten(page, wbc, nrWritten + 1);
        if (iSize <= start)
        {
            Inode.BtrfsWritepageEndIoHook(inode, page, start, pageEnd, uptodate: true);
            return 0;
        }

        ExtentMap em = Inode.BtrfsGetExtent(inode, start, Page.PageSize);
        if (em.IsHole)
        {
            // No disk location: the page was not set up by delalloc (a bug) or lies in a hole.
            Inode.BtrfsWritepageEndIoHook(inode, page, start, pageEnd, uptodate: true);
            return 0;
        }

        long sector = (em.BlockStart + (start - em.Start)) >> Blk.SectorShift;
        PageWriteback.SetPageWriteback(page);
        SubmitExtentPage(inode, ReqOp.Write, page, sector, Page.PageSize, ref epd.Bio, s_endBioExtentWritepage);
        nr++;
        return 0;
    }

    // update_nr_written()
    private static void UpdateNrWritten(Page page, WritebackControl wbc, long nrWritten)
    {
        wbc.NrToWrite -= nrWritten;
        if (wbc.RangeCyclic || (wbc.NrToWrite > 0 && wbc.RangeStart == 0 && wbc.RangeEnd == long.MaxValue))
        {
            ((AddressSpace)page.Mapping!).WritebackIndex = page.Index + nrWritten;
        }
    }

    /// <summary>
    /// find_lock_delalloc_range(): finds the delalloc run at or after <paramref name="start"/> (from the locked
    /// page on), locks its following pages (ascending, sleeping on each) and its io-tree range, and checks it is
    /// still delalloc.
    /// </summary>
    /// <returns>Non-zero with the range locked in [start, end]; 0 if none (end is where to look next).</returns>
    internal static int FindLockDelallocRange(BtrfsInode inode, Page lockedPage, ref long start, out long end, long maxBytes)
    {
        int loops = 0;
        while (true)
        {
            long delallocStart = start;
            int found = inode.IoTree.FindDelallocRange(ref delallocStart, out long delallocEnd, maxBytes);
            if (found == 0 || delallocEnd <= start)
            {
                start = delallocStart;
                end = delallocEnd;
                return 0;
            }

            // Pages must be locked in order: nothing before the locked page.
            if (delallocStart < start)
            {
                delallocStart = start;
            }

            if (delallocEnd + 1 - delallocStart > maxBytes)
            {
                delallocEnd = delallocStart + maxBytes - 1;
            }

            int ret = LockDelallocPages(inode, lockedPage, delallocStart, delallocEnd);
            if (ret == -Errno.EAGAIN)
            {
                // Some pages are gone: retry once with just this page.
                if (loops == 0)
                {
                    maxBytes = Page.PageSize;
                    loops = 1;
                    continue;
                }

                end = delallocEnd;
                return 0;
            }

            inode.IoTree.LockExtentBits(delallocStart, delallocEnd);
            if (!inode.IoTree.TestRangeBit(delallocStart, delallocEnd, ExtentBits.Delalloc, filled: true))
            {
                inode.IoTree.UnlockExtent(delallocStart, delallocEnd);
                __UnlockForDelalloc(inode, lockedPage, delallocStart, delallocEnd);
                Sched.CondResched();
                continue;
            }

            start = delallocStart;
            end = delallocEnd;
            return found;
        }
    }

    // lock_delalloc_pages(): locks every page of [start, end] but the locked one; -EAGAIN (nothing held) if a
    // page is missing, no longer dirty, or was truncated.
    private static int LockDelallocPages(BtrfsInode inode, Page lockedPage, long delallocStart, long delallocEnd)
    {
        long index = delallocStart >> Page.PageShift;
        long startIndex = index;
        long endIndex = delallocEnd >> Page.PageShift;
        if (index == lockedPage.Index && index == endIndex)
        {
            return 0;
        }

        AddressSpace mapping = inode.Mapping;
        long pagesLocked = 0;
        int ret = 0;
        Page[] pages = ArrayPool<Page>.Shared.Rent(16);
        try
        {
            long nrPages = endIndex - index + 1;
            while (nrPages > 0 && ret == 0)
            {
                int n = PageCache.FindGetPagesContig(mapping, index, pages.AsSpan(0, (int)Math.Min(16, nrPages)));
                if (n == 0)
                {
                    ret = -Errno.EAGAIN;
                    break;
                }

                for (int i = 0; i < n; i++)
                {
                    Page page = pages[i];
                    if (ret == 0 && page != lockedPage)
                    {
                        Filemap.LockPage(page);
                        if (!page.Test(PageFlags.Dirty) || page.Mapping != mapping)
                        {
                            ret = -Errno.EAGAIN;
                            Filemap.UnlockPage(page);
                        }
                    }

                    if (ret == 0)
                    {
                        pagesLocked++;
                    }

                    PageCache.PageCacheRelease(page);
                }

                nrPages -= n;
                index += n;
                Sched.CondResched();
            }
        }
        finally
        {
            ArrayPool<Page>.Shared.Return(pages, clearArray: true);
        }

        if (ret != 0 && pagesLocked != 0)
        {
            __UnlockForDelalloc(inode, lockedPage, delallocStart, ((startIndex + pagesLocked - 1) << Page.PageShift));
        }

        return ret;
    }

    // __unlock_for_delalloc(): unlocks the pages of [start, end] but the locked one.
    private static void __UnlockForDelalloc(BtrfsInode inode, Page lockedPage, long start, long end)
    {
        long index = start >> Page.PageShift;
        long endIndex = end >> Page.PageShift;
        if (index == lockedPage.Index && endIndex == index)
        {
            return;
        }

        Page[] pages = ArrayPool<Page>.Shared.Rent(16);
        try
        {
            while (index <= endIndex)
            {
                int n = PageCache.FindGetPagesContig(inode.Mapping, index, pages.AsSpan(0, (int)Math.Min(16, endIndex - index + 1)));
                if (n == 0)
                {
                    break;
                }

                for (int i = 0; i < n; i++)
                {
                    if (pages[i] != lockedPage)
                    {
                        Filemap.UnlockPage(pages[i]);
                    }

                    PageCache.PageCacheRelease(pages[i]);
                }

                index += n;
                Sched.CondResched();
            }
        }
        finally
        {
            ArrayPool<Page>.Shared.Return(pages, clearArray: true);
        }
    }

    // submit_extent_page(): adds the page to the bio being built if it continues it on disk, else submits that
    // bio and starts a new one.
    private static void SubmitExtentPage(BtrfsInode inode, ReqOp op, Page page, long sector, int size, ref Bio? bioRet, Action<Bio> endIo)
    {
        Bio? bio = bioRet;
        if (bio is not null)
        {
            bool contig = bio.BiSector + (bio.BiSize >> Blk.SectorShift) == sector;
            if (contig && bio.AddPage(page, (uint)size, 0) == (uint)size)
            {
                return;
            }

            bioRet = null;
            SubmitOneBio(inode, bio);
        }

        bio = Bio.Alloc(Blk.BioMaxPages);
        bio.BiOp = op;
        bio.BiSector = sector;
        bio.AddPage(page, (uint)size, 0);
        bio.BiEndIo = endIo;
        bioRet = bio;
    }

    // submit_one_bio(): the filesystem's submit_bio_hook (checksums, endio routing, mapping).
    private static void SubmitOneBio(BtrfsInode inode, Bio bio)
    {
        ReadOnlySpan<BioVec> vecs = bio.Vecs;
        long start = (vecs[0].BvPage!.Index << Page.PageShift) + vecs[0].BvOffset;
        Inode.BtrfsSubmitBioHook(inode, bio, start);
    }

    // end_bio_extent_writepage(): completion context. Ends each page's writeback after the ordered-extent
    // accounting (btrfs_writepage_end_io_hook).
    private static void EndBioExtentWritepage(Bio bio)
    {
        int error = bio.BiError;
        foreach (ref readonly BioVec bvec in bio.Vecs)
        {
            Page page = bvec.BvPage!;
            long start = (page.Index << Page.PageShift) + bvec.BvOffset;
            long end = start + bvec.BvLen - 1;
            EndExtentWritepage(page, error, start, end);
            PageWriteback.EndPageWriteback(page);
        }

        bio.Put();
    }

    // end_extent_writepage(): the ordered-extent hook, then error marking (the error reaches fsync through
    // the page and the mapping).
    private static void EndExtentWritepage(Page page, int err, long start, long end)
    {
        bool uptodate = err == 0;
        var mapping = (AddressSpace)page.Mapping!;
        var inode = (BtrfsInode)mapping.Host;
        Inode.BtrfsWritepageEndIoHook(inode, page, start, end, uptodate);
        if (!uptodate)
        {
            page.Clear(PageFlags.Uptodate);
            page.Set(PageFlags.Error);
            mapping.SetError(err < 0 ? err : -Errno.EIO);
        }
    }

    // __extent_read_full_page(): with the page locked, lock its range and wait out any ordered extent over it.
    private static int __ExtentReadFullPage(BtrfsInode inode, Page page, ref Bio? bio)
    {
        long start = page.Index << Page.PageShift;
        long end = start + Page.PageSize - 1;
        while (true)
        {
            inode.IoTree.LockExtent(start, end);
            BtrfsOrderedExtent? ordered = OrderedData.BtrfsLookupOrderedExtent(inode, start);
            if (ordered is null)
            {
                break;
            }

            inode.IoTree.UnlockExtent(start, end);
            OrderedData.BtrfsStartOrderedExtent(inode, ordered, wait: true);
        }

        return __DoReadpage(inode, page, ref bio);
    }

    // __do_readpage(): the range [start, end] of the locked page is locked in the io tree. Holes, bytes past
    // EOF and ranges already uptodate are filled here and unlocked; the rest is read by a bio whose completion
    // unlocks range and page.
    private static int __DoReadpage(BtrfsInode inode, Page page, ref Bio? bio)
    {
        long start = page.Index << Page.PageShift;
        long end = start + Page.PageSize - 1;
        Span<byte> data = inode.FsInfo.Zone.PageData(page);
        SetPageExtentMapped(page);
        long lastByte = inode.ISize;
        int nr = 0;
        if (page.Index == lastByte >> Page.PageShift)
        {
            int zeroOffset = (int)(lastByte & (Page.PageSize - 1));
            if (zeroOffset != 0)
            {
                data[zeroOffset..].Clear();
            }
        }

        long cur = start;
        while (cur <= end)
        {
            int pgOffset = (int)(cur - start);
            if (cur >= lastByte)
            {
                data[pgOffset..].Clear();
                inode.IoTree.SetExtentUptodate(cur, end);
                inode.IoTree.UnlockExtent(cur, end);
                break;
            }

            ExtentMap em = Inode.BtrfsGetExtent(inode, cur, end - cur + 1);
            long iosize = Math.Min(em.End - cur, end - cur + 1);
            if (em.IsHole)
            {
                data.Slice(pgOffset, (int)iosize).Clear();
                inode.IoTree.SetExtentUptodate(cur, cur + iosize - 1);
                inode.IoTree.UnlockExtent(cur, cur + iosize - 1);
                cur += iosize;
                continue;
            }

            if (inode.IoTree.TestRangeBit(cur, cur + iosize - 1, ExtentBits.Uptodate, filled: true))
            {
                // check_page_uptodate(): the data is already in the page.
                inode.IoTree.UnlockExtent(cur, cur + iosize - 1);
                cur += iosize;
                continue;
            }

            long sector = (em.BlockStart + (cur - em.Start)) >> Blk.SectorShift;
            Filemap.PageLockHandOffToIo(page);
            inode.IoTree.ExtentLockHandOffToIo(cur, cur + iosize - 1);
            SubmitExtentPage(inode, ReqOp.Read, page, sector, (int)iosize, ref bio, s_endBioExtentReadpage);
            nr++;
            cur += iosize;
        }

        if (nr == 0)
        {
            if (!page.Test(PageFlags.Error))
            {
                page.Set(PageFlags.Uptodate);
            }

            Filemap.UnlockPage(page);
        }

        return 0;
    }

    // end_bio_extent_readpage(): runs on the endio worker (end_workqueue_bio); verifies each page's checksums,
    // sets it uptodate or errored, unlocks it and its io-tree range.
    private static void EndBioExtentReadpage(Bio bio)
    {
        BtrfsIoBio ioBio = BtrfsIoBio.From(bio);
        BtrfsInode inode = ioBio.Inode!;
        Zone zone = inode.FsInfo.Zone;
        int sectorIndex = 0;
        foreach (ref readonly BioVec bvec in bio.Vecs)
        {
            Page page = bvec.BvPage!;
            long start = (page.Index << Page.PageShift) + bvec.BvOffset;
            long end = start + bvec.BvLen - 1;
            bool uptodate = bio.BiError == 0;
            if (uptodate)
            {
                uptodate = Inode.BtrfsReadpageEndIoHook(ioBio, sectorIndex, zone.PageData(page).Slice((int)bvec.BvOffset, (int)bvec.BvLen), inode, start) == 0;
            }

            sectorIndex += (int)(bvec.BvLen / inode.FsInfo.SectorSize);
            if (uptodate)
            {
                long iSize = inode.ISize;
                if (page.Index == iSize >> Page.PageShift && (iSize & (Page.PageSize - 1)) != 0)
                {
                    zone.PageData(page)[(int)(iSize & (Page.PageSize - 1))..].Clear();
                }

                page.Set(PageFlags.Uptodate);
                inode.IoTree.SetExtentUptodate(start, end);
            }
            else
            {
                page.Clear(PageFlags.Uptodate);
                page.Set(PageFlags.Error);
            }

            Filemap.UnlockPage(page);
            inode.IoTree.UnlockExtent(start, end);
        }

        ioBio.Release();
        bio.Put();
    }
}
