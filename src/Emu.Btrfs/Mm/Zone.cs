// Mirrors: the parts of mm/page_alloc.c (alloc_page, __free_page, get_page/put_page), mm/vmscan.c
// (shrink_page_list, __remove_mapping) and mm/vmstat.c (NR_FILE_DIRTY, NR_WRITEBACK, NR_DIRTIED,
// NR_WRITTEN) that the page cache needs, for one emulated memory zone.
//
// Model: page frames are 4 KiB slots of native, page-aligned slabs (Emu.Interop.NativeBuffer), allocated on
// demand up to a fixed number of pages: the size limit of the page cache plus any DIO bounce pages. A page in
// use has a reference count; the page cache holds one reference, every lookup (find_get_page, pagevec
// lookups) takes another, and the frame returns to the free list when the last reference is put. When no
// frame is free, the allocating task reclaims: it walks the LRU in insertion order, gives referenced pages a
// second chance, and evicts clean, unlocked, not-writeback pages that nobody else references (after asking
// the filesystem to release its private state, btrfs_releasepage). Dirty and writeback pages are counted
// here for balance_dirty_pages.
// Differs: one zone per mounted filesystem rather than per NUMA node, one LRU list instead of active/inactive
// lists, and reclaim never writes pages itself (it relies on the flusher and on balance_dirty_pages keeping
// dirty pages well below the limit). The reference count lives in page->private (PageExt), because
// Emu.Kernel's struct page leaves reference counting to the memory manager; btrfs's own page->private is
// represented by PG_private alone.
//
// Locking legend: Z = _lock (zone->lock / lru_lock); A = Interlocked.
using System.Diagnostics;
using Emu.Interop;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>The per-page fields the memory manager keeps (struct page: _count).</summary>
internal sealed class PageExt(Zone zone)
{
    public readonly Zone Zone = zone; // I: the zone the frame belongs to
    public int Count = 1;             // A: page_count(); 0 once the frame is freed
}

/// <summary>An emulated memory zone: page frames, the page LRU, and the vm counters.</summary>
public sealed class Zone : IDisposable
{
    private const int PagesPerSlab = 256; // 1 MiB slabs

    private readonly Lock _lock = new();
    private readonly Stack<nint> _free = new();     // Z: free frames
    private readonly Queue<Page> _lru = new();      // Z: page-cache pages, oldest first
    private readonly int _numaNode;                 // I
    private NativeBuffer[] _slabs = [];             // Z for writes; replaced whole, read lock-free (sorted by address)
    private long _framesAllocated;                  // Z: frames carved from slabs
    private long _nrFileDirty;                      // A: NR_FILE_DIRTY
    private long _nrWriteback;                      // A: NR_WRITEBACK
    private long _nrFilePages;                      // A: NR_FILE_PAGES
    private long _nrDirtied;                        // A: NR_DIRTIED
    private long _nrWritten;                        // A: NR_WRITTEN
    private long _nrReclaimed;                      // A: pgsteal
    private bool _disposed;                         // Z

    /// <param name="maxPages">Frames the zone may hand out (page cache size limit plus bounce pages).</param>
    /// <param name="numaNode">NUMA node for the slabs; -1 for no preference.</param>
    public Zone(long maxPages, int numaNode = -1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPages, 16L);
        MaxPages = maxPages;
        _numaNode = numaNode;
    }

    /// <summary>Frames the zone may hand out.</summary>
    public long MaxPages { get; }

    /// <summary>vm.dirty_ratio: percent of the zone's pages that may be dirty or under writeback before writers are throttled.</summary>
    public int DirtyRatio { get; set; } = 20;

    /// <summary>vm.dirty_background_ratio: percent of the zone's pages dirty before background writeback starts.</summary>
    public int DirtyBackgroundRatio { get; set; } = 10;

    /// <summary>NR_FILE_DIRTY: dirty page-cache pages.</summary>
    public long NrFileDirty => Interlocked.Read(ref _nrFileDirty);

    /// <summary>NR_WRITEBACK: pages under writeback.</summary>
    public long NrWriteback => Interlocked.Read(ref _nrWriteback);

    /// <summary>NR_FILE_PAGES: pages in the page cache.</summary>
    public long NrFilePages => Interlocked.Read(ref _nrFilePages);

    /// <summary>NR_DIRTIED: pages dirtied so far (minus redirtied ones).</summary>
    public long NrDirtied => Interlocked.Read(ref _nrDirtied);

    /// <summary>NR_WRITTEN: pages whose writeback ended.</summary>
    public long NrWritten => Interlocked.Read(ref _nrWritten);

    /// <summary>Pages evicted by reclaim so far.</summary>
    public long NrReclaimed => Interlocked.Read(ref _nrReclaimed);

    /// <summary>Frames currently free or not yet carved.</summary>
    public long NrFreePages
    {
        get
        {
            lock (_lock)
            {
                return MaxPages - _framesAllocated + _free.Count;
            }
        }
    }

    /// <summary>kmap(): the 4 KiB of a page frame.</summary>
    public Span<byte> PageData(Page page) => FrameSpan(page.Address);

    /// <summary>The 4 KiB at a frame address handed out by this zone.</summary>
    public Span<byte> FrameSpan(nint address)
    {
        NativeBuffer[] slabs = Volatile.Read(ref _slabs);
        int lo = 0;
        int hi = slabs.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            nint basePtr = slabs[mid].Pointer;
            if (address < basePtr)
            {
                hi = mid - 1;
            }
            else if (address >= basePtr + (nint)slabs[mid].Length)
            {
                lo = mid + 1;
            }
            else
            {
                return slabs[mid].Span.Slice((int)(address - basePtr), Page.PageSize);
            }
        }

        throw new ArgumentException($"address 0x{address:x} is not a frame of this zone", nameof(address));
    }

    /// <summary>
    /// alloc_page(GFP_NOFS | __GFP_ZERO): a zeroed frame, reclaiming page-cache pages if none is free, and
    /// waiting for writeback to make pages reclaimable as a last resort.
    /// </summary>
    public nint AllocPage()
    {
        if (TryAllocFrame(out nint address))
        {
            return address;
        }

        return AllocPageSlow();
    }

    /// <summary>__free_page(): returns a frame from <see cref="AllocPage"/>.</summary>
    public void FreePage(nint address)
    {
        lock (_lock)
        {
            _free.Push(address);
        }
    }

    /// <summary>Releases every slab. The zone must be unused.</summary>
    public void Dispose()
    {
        NativeBuffer[] slabs;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            slabs = _slabs;
            _slabs = [];
            _free.Clear();
            _lru.Clear();
        }

        foreach (NativeBuffer slab in slabs)
        {
            slab.Dispose();
        }
    }

    // A new page-cache page for (mapping, index) with one reference (the caller's, which becomes the cache's).
    internal Page NewCachePage(AddressSpace mapping, long index)
    {
        var page = new Page(mapping, mapping.InodeNumber, index, AllocPage());
        page.Private = new PageExt(this);
        return page;
    }

    // lru_cache_add() + NR_FILE_PAGES.
    internal void LruAdd(Page page)
    {
        Interlocked.Increment(ref _nrFilePages);
        lock (_lock)
        {
            _lru.Enqueue(page);
        }
    }

    // get_page(); the page must already be referenced (or be found under mapping->tree_lock).
    internal static void GetPage(Page page)
    {
        int count = Interlocked.Increment(ref Ext(page).Count);
        Debug.Assert(count > 1, "get_page on a freed page");
    }

    // put_page(): the frame is freed with the last reference.
    internal static void PutPage(Page page)
    {
        PageExt ext = Ext(page);
        int count = Interlocked.Decrement(ref ext.Count);
        Debug.Assert(count >= 0, "put_page underflow");
        if (count == 0)
        {
            Debug.Assert(page.Mapping is null, "last reference of a page still in the page cache");
            ext.Zone.FreePage(page.Address);
        }
    }

    internal static int PageCount(Page page) => Volatile.Read(ref Ext(page).Count);

    internal void AccountPageDirtied()
    {
        Interlocked.Increment(ref _nrFileDirty);
        Interlocked.Increment(ref _nrDirtied);
    }

    internal void AccountPageCleaned() => Interlocked.Decrement(ref _nrFileDirty);

    // account_page_redirty(): a page cleaned and dirtied again is not new dirtying.
    internal void AccountPageRedirty() => Interlocked.Decrement(ref _nrDirtied);

    internal void AccountWritebackStart() => Interlocked.Increment(ref _nrWriteback);

    internal void AccountWritebackEnd()
    {
        Interlocked.Decrement(ref _nrWriteback);
        Interlocked.Increment(ref _nrWritten);
    }

    internal void AccountPageRemoved() => Interlocked.Decrement(ref _nrFilePages);

    /// <summary>
    /// shrink_page_list(): tries to evict up to <paramref name="nrToReclaim"/> page-cache pages, scanning the
    /// LRU at most twice over.
    /// </summary>
    /// <returns>Pages evicted.</returns>
    internal int ShrinkPageCache(int nrToReclaim)
    {
        using KFrame frame = KFunc.Enter("shrink_page_list");
        int reclaimed = 0;
        int budget;
        lock (_lock)
        {
            budget = _lru.Count * 2;
        }

        while (reclaimed < nrToReclaim && budget-- > 0)
        {
            Page page;
            lock (_lock)
            {
                if (!_lru.TryDequeue(out page!))
                {
                    break;
                }
            }

            switch (TryEvict(page))
            {
                case EvictResult.Evicted:
                    reclaimed++;
                    break;
                case EvictResult.Keep:
                    lock (_lock)
                    {
                        _lru.Enqueue(page);
                    }

                    break;
                case EvictResult.Gone:
                    break;
            }
        }

        Interlocked.Add(ref _nrReclaimed, reclaimed);
        return reclaimed;
    }

    private EvictResult TryEvict(Page page)
    {
        if (page.Mapping is not AddressSpace mapping)
        {
            return EvictResult.Gone; // truncated or invalidated: already off the cache
        }

        if (page.TestAndClear(PageFlags.Referenced))
        {
            return EvictResult.Keep; // second chance (page_referenced)
        }

        if ((page.Flags & (PageFlags.Dirty | PageFlags.Writeback | PageFlags.Locked)) != 0 || !Filemap.TrylockPage(page))
        {
            return EvictResult.Keep;
        }

        bool evicted = false;
        if (page.Mapping == mapping && !page.Test(PageFlags.Dirty) && !page.Test(PageFlags.Writeback) &&
            (!page.Test(PageFlags.Private) || mapping.Aops.ReleasePage(page)))
        {
            // __remove_mapping(): only the cache's own reference may remain.
            lock (mapping.TreeLock)
            {
                if (PageCount(page) == 1 && !page.Test(PageFlags.Dirty))
                {
                    mapping.PageTree.Delete(page.Index);
                    mapping.NrPages--;
                    page.Mapping = null;
                    evicted = true;
                }
            }
        }

        Filemap.UnlockPage(page);
        if (!evicted)
        {
            return page.Mapping is null ? EvictResult.Gone : EvictResult.Keep;
        }

        AccountPageRemoved();
        PutPage(page);
        return EvictResult.Evicted;
    }

    private bool TryAllocFrame(out nint address)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.TryPop(out address))
            {
                FrameSpan(address).Clear();
                return true;
            }

            if (_framesAllocated >= MaxPages)
            {
                return false;
            }

            int pages = (int)Math.Min(PagesPerSlab, MaxPages - _framesAllocated);
            NativeBuffer slab = NativeBuffer.Allocate((long)pages * Page.PageSize, _numaNode);
            AddSlabLocked(slab);
            _framesAllocated += pages;
            for (int i = pages - 1; i > 0; i--)
            {
                _free.Push(slab.Pointer + (nint)i * Page.PageSize);
            }

            address = slab.Pointer;
            return true;
        }
    }

    private void AddSlabLocked(NativeBuffer slab)
    {
        NativeBuffer[] old = _slabs;
        var slabs = new NativeBuffer[old.Length + 1];
        int at = 0;
        while (at < old.Length && old[at].Pointer < slab.Pointer)
        {
            at++;
        }

        Array.Copy(old, 0, slabs, 0, at);
        slabs[at] = slab;
        Array.Copy(old, at, slabs, at + 1, old.Length - at);
        Volatile.Write(ref _slabs, slabs);
    }

    // Direct reclaim, then (as congestion_wait does) short sleeps for writeback to turn dirty pages clean.
    private nint AllocPageSlow()
    {
        using KFrame frame = KFunc.Enter("__alloc_pages_slowpath");
        for (int attempt = 0; ; attempt++)
        {
            if (ShrinkPageCache(32) > 0 && TryAllocFrame(out nint address))
            {
                return address;
            }

            if (TryAllocFrame(out address))
            {
                return address;
            }

            if (attempt == 500)
            {
                throw new OutOfMemoryException(
                    $"page allocation failure: {MaxPages} pages, none reclaimable (dirty {NrFileDirty}, writeback {NrWriteback})");
            }

            ReclaimStalled?.Invoke();
            _ = EmuTask.CurrentOrThrow;
            Sched.SetCurrentState(TaskState.Uninterruptible);
            Sched.IoScheduleTimeout(10);
        }
    }

    /// <summary>Called when allocation finds nothing reclaimable (the filesystem wakes its flusher).</summary>
    internal Action? ReclaimStalled { get; set; }

    private static PageExt Ext(Page page) => (PageExt)page.Private!;

    private enum EvictResult
    {
        Evicted,
        Keep,
        Gone,
    }
}
