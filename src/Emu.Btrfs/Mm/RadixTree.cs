// Mirrors: lib/radix-tree.c (v4.4): radix_tree_insert, radix_tree_lookup, radix_tree_delete,
// radix_tree_tag_set/clear/get, radix_tree_tagged, radix_tree_gang_lookup(_tag).
//
// Model: a tree of 64-slot nodes indexed by successive 6-bit digits of the index, grown at the top as
// larger indices arrive. Each node keeps one bit per slot per tag, set when anything below that slot carries
// the tag, so tagged lookups skip untagged subtrees. The page cache keeps PAGECACHE_TAG_DIRTY, _WRITEBACK
// and _TOWRITE here.
// Differs: no RCU; every operation runs under the owner's lock (mapping->tree_lock). The tree never shrinks
// in height. Lookups are allocation-free and fill a caller's array.
//
// Locking legend: every field is protected by the owner's lock (mapping->tree_lock), held around each call.
using System.Diagnostics;
using System.Numerics;

namespace Emu.Btrfs;

/// <summary>Page-cache radix tree tags (PAGECACHE_TAG_*).</summary>
public enum PageCacheTag
{
    /// <summary>The page is dirty. PAGECACHE_TAG_DIRTY.</summary>
    Dirty = 0,

    /// <summary>The page is under writeback. PAGECACHE_TAG_WRITEBACK.</summary>
    Writeback = 1,

    /// <summary>The page was dirty when a data-integrity writeback started (tag_pages_for_writeback). PAGECACHE_TAG_TOWRITE.</summary>
    Towrite = 2,
}

/// <summary>struct radix_tree_root: a sparse array indexed by long with three tags. Callers serialize access.</summary>
internal sealed class RadixTree<T>
    where T : class
{
    private const int MapShift = 6;
    private const int MapSize = 1 << MapShift;
    private const int MapMask = MapSize - 1;
    private const int TagCount = 3;
    private const int MaxHeight = (63 + MapShift - 1) / MapShift;

    private readonly Node[] _path = new Node[MaxHeight];   // scratch for Delete/TagClear (callers serialize)
    private readonly int[] _offsets = new int[MaxHeight];  // scratch, as _path
    private readonly T[] _one = new T[1];                   // scratch for AnyInRange, as _path
    private Node? _root;
    private int _height;     // levels below the root pointer; 0 when empty
    private int _rootTags;   // bit per tag: anything in the tree carries it

    /// <summary>Number of items.</summary>
    public long Count { get; private set; }

    /// <summary>radix_tree_lookup().</summary>
    public T? Lookup(long index)
    {
        Debug.Assert(index >= 0, "negative index");
        if (_root is null || index > MaxIndex(_height))
        {
            return null;
        }

        Node node = _root;
        for (int level = _height - 1; level > 0; level--)
        {
            if (node.Slots[Offset(index, level)] is not Node child)
            {
                return null;
            }

            node = child;
        }

        return (T?)node.Slots[(int)(index & MapMask)];
    }

    /// <summary>radix_tree_insert(): adds <paramref name="item"/> at <paramref name="index"/>; false if the slot is taken.</summary>
    public bool Insert(long index, T item)
    {
        Debug.Assert(index >= 0, "negative index");
        Extend(index);
        Node node = _root!;
        for (int level = _height - 1; level > 0; level--)
        {
            int offset = Offset(index, level);
            if (node.Slots[offset] is not Node child)
            {
                child = new Node();
                node.Slots[offset] = child;
                node.Count++;
            }

            node = child;
        }

        int leaf = (int)(index & MapMask);
        if (node.Slots[leaf] is not null)
        {
            return false;
        }

        node.Slots[leaf] = item;
        node.Count++;
        Count++;
        return true;
    }

    /// <summary>radix_tree_delete(): removes the item at <paramref name="index"/> with its tags; returns it, or null.</summary>
    public T? Delete(long index)
    {
        if (_root is null || index > MaxIndex(_height))
        {
            return null;
        }

        Node[] path = _path;
        int[] offsets = _offsets;
        if (!Walk(index, path, offsets))
        {
            return null;
        }

        Node leafNode = path[0];
        int leaf = offsets[0];
        var item = (T?)leafNode.Slots[leaf];
        if (item is null)
        {
            return null;
        }

        for (int tag = 0; tag < TagCount; tag++)
        {
            ClearTagOnPath(path, offsets, tag);
        }

        leafNode.Slots[leaf] = null;
        Count--;
        for (int level = 0; level < _height; level++)
        {
            Node node = path[level];
            if (--node.Count != 0)
            {
                break;
            }

            if (level + 1 == _height)
            {
                _root = null;
                _height = 0;
                _rootTags = 0;
                break;
            }

            path[level + 1].Slots[offsets[level + 1]] = null;
        }

        return item;
    }

    /// <summary>radix_tree_tag_set(): tags the item at <paramref name="index"/> (which must exist).</summary>
    public void TagSet(long index, PageCacheTag tag)
    {
        int t = (int)tag;
        Node node = _root ?? throw new InvalidOperationException("radix_tree_tag_set on an empty tree");
        for (int level = _height - 1; level >= 0; level--)
        {
            int offset = Offset(index, level);
            node.Tags[t] |= 1UL << offset;
            if (level > 0)
            {
                node = (Node)node.Slots[offset]!;
            }
        }

        _rootTags |= 1 << t;
    }

    /// <summary>radix_tree_tag_clear(): clears the tag of the item at <paramref name="index"/>, if present.</summary>
    public void TagClear(long index, PageCacheTag tag)
    {
        if (_root is null || index > MaxIndex(_height))
        {
            return;
        }

        if (Walk(index, _path, _offsets))
        {
            ClearTagOnPath(_path, _offsets, (int)tag);
        }
    }

    /// <summary>radix_tree_tag_get().</summary>
    public bool TagGet(long index, PageCacheTag tag)
    {
        if (_root is null || index > MaxIndex(_height))
        {
            return false;
        }

        Node node = _root;
        for (int level = _height - 1; level >= 0; level--)
        {
            int offset = Offset(index, level);
            if ((node.Tags[(int)tag] & (1UL << offset)) == 0)
            {
                return false;
            }

            if (level > 0)
            {
                node = (Node)node.Slots[offset]!;
            }
        }

        return true;
    }

    /// <summary>radix_tree_tagged(): whether any item carries the tag.</summary>
    public bool Tagged(PageCacheTag tag) => (_rootTags & (1 << (int)tag)) != 0;

    /// <summary>
    /// radix_tree_gang_lookup(_tag)(): fills <paramref name="results"/> with items in [first, last] in index
    /// order (only tagged ones when <paramref name="tag"/> is given).
    /// </summary>
    /// <returns>The number found; <paramref name="next"/> is the index after the last one returned.</returns>
    public int GangLookup(long first, long last, PageCacheTag? tag, Span<T> results, out long next)
    {
        next = first;
        if (_root is null || first > last || first > MaxIndex(_height) || results.IsEmpty)
        {
            return 0;
        }

        if (tag is PageCacheTag t && !Tagged(t))
        {
            return 0;
        }

        int found = 0;
        Collect(_root, _height - 1, 0, first, Math.Min(last, MaxIndex(_height)), tag is null ? -1 : (int)tag.Value, results, ref found, ref next);
        return found;
    }

    /// <summary>Whether any item lies in [first, last].</summary>
    public bool AnyInRange(long first, long last)
    {
        bool any = GangLookup(first, last, null, _one, out _) != 0;
        _one[0] = null!;
        return any;
    }

    /// <summary>
    /// radix_tree_range_tag_if_tagged(): sets <paramref name="setTag"/> on up to <paramref name="nrToTag"/> items
    /// in [first, last] that carry <paramref name="ifTag"/>.
    /// </summary>
    /// <returns>Items tagged; <paramref name="next"/> is the index to resume from.</returns>
    public int RangeTagIfTagged(long first, long last, int nrToTag, PageCacheTag ifTag, PageCacheTag setTag, out long next)
    {
        next = last == long.MaxValue ? last : last + 1;
        if (_root is null || first > last || first > MaxIndex(_height) || !Tagged(ifTag))
        {
            return 0;
        }

        int tagged = 0;
        long resume = next;
        TagLeaves(_root, _height - 1, 0, first, Math.Min(last, MaxIndex(_height)), (int)ifTag, setTag, nrToTag, ref tagged, ref resume);
        next = resume;
        return tagged;
    }

    private void TagLeaves(Node node, int level, long baseIndex, long first, long last, int ifTag, PageCacheTag setTag, int max, ref int tagged, ref long resume)
    {
        int shift = level * MapShift;
        int start = baseIndex >= first ? 0 : (int)((first - baseIndex) >> shift);
        int stop = (int)Math.Min(MapMask, (last - baseIndex) >> shift);
        ulong mask = node.Tags[ifTag] & (ulong.MaxValue << start);
        if (stop < MapMask)
        {
            mask &= (1UL << (stop + 1)) - 1;
        }

        while (mask != 0)
        {
            int offset = BitOperations.TrailingZeroCount(mask);
            mask &= mask - 1;
            long childBase = baseIndex + ((long)offset << shift);
            if (tagged == max)
            {
                resume = Math.Max(childBase, first);
                return;
            }

            if (level == 0)
            {
                TagSet(childBase, setTag);
                tagged++;
            }
            else
            {
                TagLeaves((Node)node.Slots[offset]!, level - 1, childBase, first, last, ifTag, setTag, max, ref tagged, ref resume);
                if (tagged == max && resume <= last)
                {
                    return;
                }
            }
        }
    }

    private void Collect(Node node, int level, long baseIndex, long first, long last, int tag, Span<T> results, ref int found, ref long next)
    {
        int shift = level * MapShift;
        int start = baseIndex >= first ? 0 : (int)((first - baseIndex) >> shift);
        int stop = (int)Math.Min(MapMask, (last - baseIndex) >> shift);
        ulong mask = tag >= 0 ? node.Tags[tag] : ulong.MaxValue;
        mask &= ulong.MaxValue << start;
        if (stop < MapMask)
        {
            mask &= (1UL << (stop + 1)) - 1;
        }

        while (mask != 0 && found < results.Length)
        {
            int offset = BitOperations.TrailingZeroCount(mask);
            mask &= mask - 1;
            object? slot = node.Slots[offset];
            if (slot is null)
            {
                continue;
            }

            long childBase = baseIndex + ((long)offset << shift);
            if (level == 0)
            {
                results[found++] = (T)slot;
                next = childBase + 1;
            }
            else
            {
                Collect((Node)slot, level - 1, childBase, first, last, tag, results, ref found, ref next);
            }
        }
    }

    // Fills path[level] with the node at each level (path[0] = leaf node) and offsets[level] with the slot
    // taken there. False if the walk hits an empty slot above the leaf.
    private bool Walk(long index, Node[] path, int[] offsets)
    {
        Node node = _root!;
        for (int level = _height - 1; level >= 0; level--)
        {
            int offset = Offset(index, level);
            path[level] = node;
            offsets[level] = offset;
            if (level > 0)
            {
                if (node.Slots[offset] is not Node child)
                {
                    return false;
                }

                node = child;
            }
        }

        return true;
    }

    private void ClearTagOnPath(Node[] path, int[] offsets, int tag)
    {
        for (int level = 0; level < _height; level++)
        {
            Node node = path[level];
            node.Tags[tag] &= ~(1UL << offsets[level]);
            if (node.Tags[tag] != 0)
            {
                return;
            }
        }

        _rootTags &= ~(1 << tag);
    }

    // radix_tree_extend(): adds levels on top until index fits; the old root becomes slot 0 of the new one.
    private void Extend(long index)
    {
        if (_root is null)
        {
            _root = new Node();
            _height = 1;
        }

        while (index > MaxIndex(_height))
        {
            var top = new Node();
            top.Slots[0] = _root;
            top.Count = 1;
            for (int tag = 0; tag < TagCount; tag++)
            {
                if (_root.Tags[tag] != 0)
                {
                    top.Tags[tag] = 1;
                }
            }

            _root = top;
            _height++;
        }
    }

    private static int Offset(long index, int level) => (int)((index >> (level * MapShift)) & MapMask);

    private static long MaxIndex(int height) =>
        height * MapShift >= 63 ? long.MaxValue : (1L << (height * MapShift)) - 1;

    private sealed class Node
    {
        public readonly object?[] Slots = new object?[MapSize];
        public readonly ulong[] Tags = new ulong[TagCount];
        public int Count;
    }
}
