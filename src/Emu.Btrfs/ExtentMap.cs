// Mirrors: fs/btrfs/extent_map.c (v4.4): lookup_extent_mapping, add_extent_mapping, remove_extent_mapping,
// unpin_extent_cache; and fs/btrfs/file.c btrfs_drop_extent_cache.
//
// Model: a per-inode cache mapping file ranges to disk ranges (or holes), filled from the file extent items
// by btrfs_get_extent and by cow_file_range for extents being written. An extent map created for an
// ordered extent is PINNED until btrfs_finish_ordered_io has recorded the file extent item, so it cannot
// be dropped while writeback still needs it to know where the pages go.
// Differs: a sorted array instead of an rb-tree; no merging of adjacent maps; no modified list (no tree log).
//
// Locking legend: L = Lock (em_tree->lock, a rwlock in the kernel; taken exclusively here, never across a sleep).
using System.Diagnostics;

namespace Emu.Btrfs;

/// <summary>extent_map flags (EXTENT_FLAG_* bits, v4.4).</summary>
[Flags]
public enum ExtentMapFlags
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>The map must stay cached (its ordered extent is in flight). EXTENT_FLAG_PINNED.</summary>
    Pinned = 1 << 0,

    /// <summary>A hole made up for a range with no file extent item. EXTENT_FLAG_VACANCY.</summary>
    Vacancy = 1 << 2,
}

/// <summary>struct extent_map: file range [Start, Start + Len) maps to disk at BlockStart (or a hole).</summary>
public sealed class ExtentMap
{
    /// <summary>block_start of a hole. EXTENT_MAP_HOLE.</summary>
    public const long Hole = -3;

    internal ExtentMap(long start, long len, long blockStart, long blockLen, long origStart, ExtentMapFlags flags)
    {
        Start = start;
        Len = len;
        BlockStart = blockStart;
        BlockLen = blockLen;
        OrigStart = origStart;
        Flags = flags;
    }

    /// <summary>File offset.</summary>
    public long Start { get; internal set; }

    /// <summary>Length in bytes.</summary>
    public long Len { get; internal set; }

    /// <summary>Disk byte number of <see cref="Start"/>, or <see cref="Hole"/>.</summary>
    public long BlockStart { get; internal set; }

    /// <summary>block_len.</summary>
    public long BlockLen { get; internal set; }

    /// <summary>orig_start: the file offset of the start of the whole disk extent.</summary>
    public long OrigStart { get; internal set; }

    /// <summary>Flags; changed under the tree lock.</summary>
    public ExtentMapFlags Flags { get; internal set; }

    /// <summary>extent_map_end().</summary>
    public long End => Start + Len;

    /// <summary>Whether the map is a hole.</summary>
    public bool IsHole => BlockStart == Hole;

    /// <inheritdoc />
    public override string ToString() => $"em [{Start}, {End}) -> {(IsHole ? "hole" : BlockStart.ToString())} {Flags}";
}

/// <summary>struct extent_map_tree.</summary>
public sealed class ExtentMapTree
{
    internal readonly Lock Lock = new();
    private readonly List<ExtentMap> _maps = new(); // L: sorted by Start, non-overlapping

    /// <summary>lookup_extent_mapping(): the first map overlapping [start, start + len), or null.</summary>
    public ExtentMap? LookupExtentMapping(long start, long len)
    {
        lock (Lock)
        {
            return LookupLocked(start, len);
        }
    }

    internal ExtentMap? LookupLocked(long start, long len)
    {
        int i = FirstEndingAfter(start);
        if (i < _maps.Count && _maps[i].Start < start + len)
        {
            return _maps[i];
        }

        return null;
    }

    /// <summary>add_extent_mapping(): inserts a map; false (EEXIST) if it overlaps a cached one.</summary>
    internal bool AddLocked(ExtentMap em)
    {
        int i = FirstEndingAfter(em.Start);
        if (i < _maps.Count && _maps[i].Start < em.End)
        {
            return false;
        }

        _maps.Insert(i, em);
        return true;
    }

    /// <summary>
    /// btrfs_drop_extent_cache(): removes cached maps in [start, end], keeping the parts outside the range;
    /// with <paramref name="skipPinned"/> pinned maps are left alone.
    /// </summary>
    public void DropExtentCache(long start, long end, bool skipPinned)
    {
        lock (Lock)
        {
            int i = FirstEndingAfter(start);
            while (i < _maps.Count && _maps[i].Start <= end)
            {
                ExtentMap em = _maps[i];
                if (skipPinned && (em.Flags & ExtentMapFlags.Pinned) != 0)
                {
                    i++;
                    continue;
                }

                _maps.RemoveAt(i);
                if (em.Start < start)
                {
                    _maps.Insert(i++, Slice(em, em.Start, start));
                }

                if (em.End > end + 1)
                {
                    _maps.Insert(i++, Slice(em, end + 1, em.End));
                }
            }
        }
    }

    /// <summary>unpin_extent_cache(): the ordered extent at [start, start + len) finished; its map may go.</summary>
    public void UnpinExtentCache(long start, long len)
    {
        lock (Lock)
        {
            ExtentMap? em = LookupLocked(start, len);
            if (em is not null && em.Start == start)
            {
                em.Flags &= ~ExtentMapFlags.Pinned;
            }
        }
    }

    /// <summary>A snapshot of the cached maps, for tests.</summary>
    public ExtentMap[] Snapshot()
    {
        lock (Lock)
        {
            return _maps.ToArray();
        }
    }

    private static ExtentMap Slice(ExtentMap em, long start, long end)
    {
        Debug.Assert(start < end && start >= em.Start && end <= em.End, "slice outside the map");
        long blockStart = em.IsHole ? ExtentMap.Hole : em.BlockStart + (start - em.Start);
        return new ExtentMap(start, end - start, blockStart, em.IsHole ? 0 : end - start, em.OrigStart, em.Flags & ~ExtentMapFlags.Pinned);
    }

    // Index of the first map whose end is after pos.
    private int FirstEndingAfter(long pos)
    {
        int lo = 0;
        int hi = _maps.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (_maps[mid].End <= pos)
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
