// Mirrors: fs/btrfs/extent-tree.c (v4.4) for data extents: btrfs_reserve_extent (find_free_extent),
// btrfs_free_reserved_extent, btrfs_alloc_reserved_file_extent, btrfs_inc_extent_ref, btrfs_free_extent
// (__btrfs_free_extent), and the free-space cache of fs/btrfs/free-space-cache.c.
//
// Model: one data block group spanning the device after the superblock area. Free space is a sorted list of
// free ranges; allocation is next-fit from where the last one ended (as btrfs's allocation cursor and
// clustering make new writes land on fresh space), wrapping around once, and takes a smaller piece when no
// free range is large enough. Every allocated extent has an extent item with a reference count: one per
// file extent item pointing into it (a snapshot or a split file extent item adds one). Dropping the last
// reference deletes the extent's checksums and frees its space.
// Differs: extent and free-space metadata live in memory, not in b-trees on disk; freed space is reusable at
// once instead of pinned until the transaction commits (safe here because readers of an extent hold its
// io-tree range locked until their bios complete, which keeps btrfs_finish_ordered_io from freeing it).
//
// Locking legend: L = _lock (the block group's lock and the free-space ctl lock together).
using System.Diagnostics;

namespace Emu.Btrfs;

/// <summary>The data allocator and the extent items (extent tree) of a filesystem.</summary>
public sealed class ExtentTree
{
    private readonly Lock _lock = new();
    private readonly List<(long Start, long Len)> _free = new();          // L: sorted, non-adjacent
    private readonly Dictionary<long, (long NumBytes, int Refs)> _items = new(); // L: extent items by bytenr
    private readonly CsumTree _csums;                                       // I
    private long _cursor;                                                   // L: next-fit position
    private long _bytesFree;                                                // L

    /// <param name="start">First byte of the data area (sector aligned).</param>
    /// <param name="end">End of the data area (exclusive).</param>
    /// <param name="sectorSize">Allocation unit.</param>
    /// <param name="csums">The checksum tree, pruned when extents are freed.</param>
    public ExtentTree(long start, long end, int sectorSize, CsumTree csums)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(end, start);
        SectorSize = sectorSize;
        DataStart = start;
        DataEnd = end;
        _csums = csums;
        _free.Add((start, end - start));
        _bytesFree = end - start;
        _cursor = start;
    }

    /// <summary>Allocation unit (sectorsize).</summary>
    public int SectorSize { get; }

    /// <summary>First byte of the data area.</summary>
    public long DataStart { get; }

    /// <summary>End of the data area (exclusive).</summary>
    public long DataEnd { get; }

    /// <summary>Free bytes.</summary>
    public long BytesFree
    {
        get
        {
            lock (_lock)
            {
                return _bytesFree;
            }
        }
    }

    /// <summary>Number of extent items (allocated extents with references).</summary>
    public int ExtentCount
    {
        get
        {
            lock (_lock)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>References to the extent starting at <paramref name="bytenr"/> (0 if it has no extent item).</summary>
    public int RefsOf(long bytenr)
    {
        lock (_lock)
        {
            return _items.TryGetValue(bytenr, out var item) ? item.Refs : 0;
        }
    }

    /// <summary>Whether [bytenr, bytenr + len) is entirely free.</summary>
    public bool IsFree(long bytenr, long len)
    {
        lock (_lock)
        {
            int i = FirstEndingAfter(bytenr);
            return i < _free.Count && _free[i].Start <= bytenr && _free[i].Start + _free[i].Len >= bytenr + len;
        }
    }

    /// <summary>
    /// btrfs_reserve_extent(): reserves <paramref name="numBytes"/> (or, if no free range is that large, the
    /// largest piece of at least <paramref name="minAllocSize"/>).
    /// </summary>
    /// <returns>0, or -ENOSPC.</returns>
    public int BtrfsReserveExtent(long numBytes, long minAllocSize, out long bytenr, out long allocated)
    {
        Debug.Assert(numBytes % SectorSize == 0 && minAllocSize % SectorSize == 0, "unaligned reservation");
        lock (_lock)
        {
            while (true)
            {
                if (TryTake(numBytes, out bytenr))
                {
                    allocated = numBytes;
                    return 0;
                }

                if (numBytes <= minAllocSize)
                {
                    allocated = 0;
                    return -Errno.ENOSPC;
                }

                // find_free_extent failed: retry with half, rounded down to the sector, as btrfs_reserve_extent does.
                numBytes = Math.Max(minAllocSize, numBytes / 2 / SectorSize * SectorSize);
            }
        }
    }

    /// <summary>btrfs_free_reserved_extent(): returns a reservation that never got an extent item.</summary>
    public void BtrfsFreeReservedExtent(long bytenr, long len)
    {
        lock (_lock)
        {
            Debug.Assert(!_items.ContainsKey(bytenr), "freeing a reservation that has an extent item");
            AddFree(bytenr, len);
        }
    }

    /// <summary>btrfs_alloc_reserved_file_extent(): the reservation becomes an extent with one reference.</summary>
    public void BtrfsAllocReservedFileExtent(long bytenr, long numBytes)
    {
        lock (_lock)
        {
            _items.Add(bytenr, (numBytes, 1));
        }
    }

    /// <summary>btrfs_inc_extent_ref(): one more file extent item points into the extent.</summary>
    public void BtrfsIncExtentRef(long bytenr)
    {
        lock (_lock)
        {
            var item = _items[bytenr];
            _items[bytenr] = (item.NumBytes, item.Refs + 1);
        }
    }

    /// <summary>
    /// btrfs_free_extent(): drops a reference; the last one deletes the extent item and its checksums and frees
    /// the space.
    /// </summary>
    /// <returns>true if the extent was freed.</returns>
    public bool BtrfsFreeExtent(long bytenr)
    {
        long numBytes;
        lock (_lock)
        {
            var item = _items[bytenr];
            if (item.Refs > 1)
            {
                _items[bytenr] = (item.NumBytes, item.Refs - 1);
                return false;
            }

            _items.Remove(bytenr);
            numBytes = item.NumBytes;
        }

        _csums.BtrfsDelCsums(bytenr, numBytes);
        lock (_lock)
        {
            AddFree(bytenr, numBytes);
        }

        return true;
    }

    private bool TryTake(long numBytes, out long bytenr)
    {
        // Next fit: the first free range at or after the cursor that fits, then from the start.
        for (int pass = 0; pass < 2; pass++)
        {
            int i = pass == 0 ? FirstEndingAfter(_cursor) : 0;
            for (; i < _free.Count; i++)
            {
                (long start, long len) = _free[i];
                long from = pass == 0 ? Math.Max(start, _cursor) : start;
                if (start + len - from < numBytes)
                {
                    continue;
                }

                bytenr = from;
                Carve(i, from, numBytes);
                _cursor = from + numBytes;
                _bytesFree -= numBytes;
                return true;
            }
        }

        bytenr = 0;
        return false;
    }

    private void Carve(int index, long from, long numBytes)
    {
        (long start, long len) = _free[index];
        long end = start + len;
        _free.RemoveAt(index);
        if (end > from + numBytes)
        {
            _free.Insert(index, (from + numBytes, end - from - numBytes));
        }

        if (from > start)
        {
            _free.Insert(index, (start, from - start));
        }
    }

    private void AddFree(long bytenr, long len)
    {
        int i = FirstEndingAfter(bytenr);
        Debug.Assert(i == _free.Count || _free[i].Start >= bytenr + len, "double free of data extent");
        long start = bytenr;
        long end = bytenr + len;
        if (i < _free.Count && _free[i].Start == end)
        {
            end = _free[i].Start + _free[i].Len;
            _free.RemoveAt(i);
        }

        if (i > 0 && _free[i - 1].Start + _free[i - 1].Len == start)
        {
            start = _free[i - 1].Start;
            _free.RemoveAt(i - 1);
            i--;
        }

        _free.Insert(i, (start, end - start));
        _bytesFree += len;
    }

    // Index of the first free range ending after pos.
    private int FirstEndingAfter(long pos)
    {
        int lo = 0;
        int hi = _free.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (_free[mid].Start + _free[mid].Len <= pos)
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
