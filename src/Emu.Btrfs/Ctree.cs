// Mirrors: fs/btrfs/ctree.h (v4.4) struct btrfs_fs_info, struct btrfs_root, struct btrfs_file_extent_item,
// and the EXTENT_DATA items of a subvolume tree (fs/btrfs/file.c __btrfs_drop_extents,
// fs/btrfs/inode.c insert_reserved_file_extent).
//
// Model: fs_info is the mounted filesystem: its mode, device, allocator, csum tree, roots, the locks the
// seed's traces name (ordered_operations_mutex, subvol_sem) and the btrfs workqueues. A root is a subvolume:
// its inodes, the list of its ordered extents under root->ordered_extent_mutex, and its delalloc inodes.
// Each inode's file extent items (the EXTENT_DATA keys of the subvolume tree) map file ranges to disk
// extents; dropping a range trims or splits items and drops their extent references, inserting a written
// extent adds one.
// Differs: subvolume trees are in memory (per-inode sorted item lists), not b-trees on disk; a snapshot is a
// copy of the items with their extent references taken (no shared tree blocks).
//
// Locking legend: I = set at init; O = OrderedRootLock (fs_info->ordered_root_lock);
// RO = OrderedExtentLock (root->ordered_extent_lock); RD = DelallocLock (root->delalloc_lock);
// F = FileExtentTree.Lock (the subvolume tree's leaf locks); TL = TransLock (fs_info->trans_lock).
using Emu.Block;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>Which lock_extent_direct() Emu runs: v4.4's (deadlock-prone) or v4.6's (ade770294df2).</summary>
public enum BtrfsMode
{
    /// <summary>v4.4: a DIO read that meets any ordered extent starts it and waits (may deadlock).</summary>
    Unpatched,

    /// <summary>v4.6: a DIO read that meets a buffered-write ordered extent returns -ENOTBLK and falls back.</summary>
    Patched,
}

/// <summary>struct btrfs_file_extent_item with its key offset: file range [FileOffset, FileOffset + NumBytes).</summary>
/// <param name="FileOffset">key.offset: where in the file the item starts.</param>
/// <param name="NumBytes">Bytes of the file it covers.</param>
/// <param name="DiskBytenr">Start of the disk extent (0 for a hole).</param>
/// <param name="DiskNumBytes">Size of the whole disk extent.</param>
/// <param name="Offset">Where in the disk extent the item's data starts.</param>
/// <param name="Generation">Transaction that wrote it.</param>
public readonly record struct FileExtentItem(long FileOffset, long NumBytes, long DiskBytenr, long DiskNumBytes, long Offset, long Generation)
{
    /// <summary>First byte after the item.</summary>
    public long End => FileOffset + NumBytes;
}

/// <summary>An inode's EXTENT_DATA items in its subvolume tree.</summary>
public sealed class FileExtentTree
{
    internal readonly Lock Lock = new();
    private readonly List<FileExtentItem> _items = new(); // F: sorted by FileOffset, non-overlapping

    /// <summary>A copy of the items, in file order.</summary>
    public FileExtentItem[] Snapshot()
    {
        lock (Lock)
        {
            return _items.ToArray();
        }
    }

    /// <summary>btrfs_lookup_file_extent(): the item containing <paramref name="offset"/>, if any.</summary>
    public bool TryLookup(long offset, out FileExtentItem item)
    {
        lock (Lock)
        {
            int i = FirstEndingAfter(offset);
            if (i < _items.Count && _items[i].FileOffset <= offset)
            {
                item = _items[i];
                return true;
            }
        }

        item = default;
        return false;
    }

    /// <summary>Start of the first item at or after <paramref name="offset"/>, or long.MaxValue.</summary>
    public long NextItemStart(long offset)
    {
        lock (Lock)
        {
            int i = FirstEndingAfter(offset);
            return i < _items.Count ? Math.Max(_items[i].FileOffset, offset) : long.MaxValue;
        }
    }

    /// <summary>
    /// __btrfs_drop_extents() + insert_reserved_file_extent(): replaces [item.FileOffset, item.End) with
    /// <paramref name="item"/>, trimming or splitting the items it overlaps and adjusting extent references.
    /// </summary>
    internal void ReplaceRange(FileExtentItem item, ExtentTree extents)
    {
        List<long>? toFree = null;
        lock (Lock)
        {
            DropLocked(item.FileOffset, item.End, extents, ref toFree);
            _items.Insert(FirstEndingAfter(item.FileOffset), item);
        }

        // The extent tree and its csum pruning are not taken under the leaf lock.
        if (toFree is not null)
        {
            foreach (long bytenr in toFree)
            {
                extents.BtrfsFreeExtent(bytenr);
            }
        }
    }

    /// <summary>Copies the items and takes a reference on each disk extent they point to (snapshot creation).</summary>
    internal FileExtentItem[] CloneForSnapshot(ExtentTree extents)
    {
        lock (Lock)
        {
            foreach (FileExtentItem item in _items)
            {
                if (item.DiskBytenr != 0)
                {
                    extents.BtrfsIncExtentRef(item.DiskBytenr);
                }
            }

            return _items.ToArray();
        }
    }

    // Context: F. Items fully inside [start, end) are removed (their reference queued for dropping); items
    // straddling an edge are trimmed; an item covering the whole range is split and its extent gains a reference.
    private void DropLocked(long start, long end, ExtentTree extents, ref List<long>? toFree)
    {
        int i = FirstEndingAfter(start);
        while (i < _items.Count && _items[i].FileOffset < end)
        {
            FileExtentItem it = _items[i];
            if (it.FileOffset < start && it.End > end)
            {
                _items[i] = it with { NumBytes = start - it.FileOffset };
                var tail = it with { FileOffset = end, NumBytes = it.End - end, Offset = it.Offset + (end - it.FileOffset) };
                _items.Insert(i + 1, tail);
                if (it.DiskBytenr != 0)
                {
                    extents.BtrfsIncExtentRef(it.DiskBytenr);
                }

                return;
            }

            if (it.FileOffset < start)
            {
                _items[i] = it with { NumBytes = start - it.FileOffset };
                i++;
                continue;
            }

            if (it.End > end)
            {
                _items[i] = it with { FileOffset = end, NumBytes = it.End - end, Offset = it.Offset + (end - it.FileOffset) };
                return;
            }

            _items.RemoveAt(i);
            if (it.DiskBytenr != 0)
            {
                (toFree ??= new List<long>()).Add(it.DiskBytenr);
            }
        }
    }

    private int FirstEndingAfter(long pos)
    {
        int lo = 0;
        int hi = _items.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (_items[mid].End <= pos)
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

/// <summary>struct btrfs_root: a subvolume.</summary>
public sealed class BtrfsRoot
{
    /// <summary>BTRFS_FS_TREE_OBJECTID.</summary>
    public const long FsTreeObjectid = 5;

    /// <summary>BTRFS_FIRST_FREE_OBJECTID: the first inode number (and subvolume id) handed out.</summary>
    public const long FirstFreeObjectid = 256;

    internal readonly Lock OrderedExtentLock = new();                         // root->ordered_extent_lock
    internal readonly LinkedList<BtrfsOrderedExtent> OrderedExtents = new();  // RO: root->ordered_extents
    internal int NrOrderedExtents;                                            // RO
    internal LinkedListNode<BtrfsRoot>? OrderedRootNode;                      // O: on fs_info->ordered_roots
    internal readonly Lock DelallocLock = new();                              // root->delalloc_lock
    internal readonly LinkedList<BtrfsInode> DelallocInodes = new();          // RD: root->delalloc_inodes
    private readonly Dictionary<long, BtrfsInode> _inodes = new();            // lock: itself
    private readonly Dictionary<long, (long ISize, FileExtentItem[] Items)>? _snapshotItems; // I: snapshots only
    private long _highestObjectid;                                            // lock: _inodes

    internal BtrfsRoot(BtrfsFsInfo fsInfo, long objectid, string name, Dictionary<long, (long, FileExtentItem[])>? snapshotItems = null)
    {
        FsInfo = fsInfo;
        Objectid = objectid;
        Name = name;
        _snapshotItems = snapshotItems;
        _highestObjectid = FirstFreeObjectid;
        OrderedExtentMutex = new KMutex("&root->ordered_extent_mutex");
        DelallocMutex = new KMutex("&root->delalloc_mutex");
    }

    /// <summary>root->fs_info.</summary>
    public BtrfsFsInfo FsInfo { get; }

    /// <summary>The subvolume id (root_key.objectid).</summary>
    public long Objectid { get; }

    /// <summary>The subvolume's name ("" for the top-level subvolume).</summary>
    public string Name { get; }

    /// <summary>Whether this is a read-only snapshot.</summary>
    public bool IsSnapshot => _snapshotItems is not null;

    /// <summary>root->ordered_extent_mutex: serializes btrfs_wait_ordered_extents on this root.</summary>
    public KMutex OrderedExtentMutex { get; }

    /// <summary>root->delalloc_mutex: serializes btrfs_start_delalloc_inodes on this root.</summary>
    public KMutex DelallocMutex { get; }

    /// <summary>Ordered extents not yet finished in this root.</summary>
    public int NrOrderedExtentsCount
    {
        get
        {
            lock (OrderedExtentLock)
            {
                return NrOrderedExtents;
            }
        }
    }

    /// <summary>The inode with number <paramref name="ino"/>, if it exists.</summary>
    public BtrfsInode? Lookup(long ino)
    {
        lock (_inodes)
        {
            return _inodes.TryGetValue(ino, out BtrfsInode? inode) ? inode : null;
        }
    }

    /// <summary>Every inode of the root, in inode-number order.</summary>
    public BtrfsInode[] Inodes()
    {
        lock (_inodes)
        {
            var all = _inodes.Values.ToArray();
            Array.Sort(all, static (a, b) => a.Ino.CompareTo(b.Ino));
            return all;
        }
    }

    /// <summary>
    /// For a snapshot: the size and file extent items inode <paramref name="ino"/> had when it was taken.
    /// </summary>
    public bool TryGetSnapshotInode(long ino, out long iSize, out FileExtentItem[] items)
    {
        if (_snapshotItems is not null && _snapshotItems.TryGetValue(ino, out var entry))
        {
            (iSize, items) = entry;
            return true;
        }

        iSize = 0;
        items = [];
        return false;
    }

    // btrfs_find_free_ino() + btrfs_new_inode(): a new regular file.
    internal BtrfsInode NewInode()
    {
        lock (_inodes)
        {
            long ino = ++_highestObjectid;
            var inode = new BtrfsInode(this, ino);
            _inodes.Add(ino, inode);
            FsInfo.Sb.InodeSbListAdd(inode);
            return inode;
        }
    }
}

/// <summary>struct btrfs_fs_info: one mounted filesystem.</summary>
public sealed class BtrfsFsInfo
{
    internal readonly Lock OrderedRootLock = new();                   // fs_info->ordered_root_lock
    internal readonly LinkedList<BtrfsRoot> OrderedRoots = new();     // O: roots with ordered extents
    internal readonly Lock TransLock = new();                         // fs_info->trans_lock
    internal BtrfsTransaction? RunningTransaction;                    // TL: fs_info->running_transaction
    private readonly List<BtrfsRoot> _snapshots = new();              // lock: itself
    private long _generation;                                         // TL for writes; read with Interlocked

    internal BtrfsFsInfo(BtrfsMode mode, GenDisk disk, Zone zone, WorkqueueSystem wqSystem, ExtentTree extents, CsumTree csums, long generation)
    {
        Mode = mode;
        Disk = disk;
        Zone = zone;
        WqSystem = wqSystem;
        ExtentRoot = extents;
        CsumRoot = csums;
        _generation = generation;
        OrderedOperationsMutex = new KMutex("&fs_info->ordered_operations_mutex");
        SubvolSem = new RwSemaphore("&fs_info->subvol_sem");
        TopDirMutex = new KMutex("&type->i_mutex_dir_key");
        FsRoot = new BtrfsRoot(this, BtrfsRoot.FsTreeObjectid, "");
    }

    /// <summary>
    /// The lock_extent_direct() behaviour. Read in exactly one place, LockExtentDirect: the only difference
    /// between the two modes, as between v4.4 and v4.6.
    /// </summary>
    public BtrfsMode Mode { get; }

    /// <summary>The filesystem's id (fsid), written in the superblock.</summary>
    public Guid Fsid { get; } = Guid.NewGuid();

    /// <summary>root->sectorsize.</summary>
    public int SectorSize => Page.PageSize;

    /// <summary>The single device (fs_devices->latest_bdev).</summary>
    public GenDisk Disk { get; }

    /// <summary>The memory zone of the page cache.</summary>
    public Zone Zone { get; }

    /// <summary>The workqueue subsystem the btrfs workqueues and the flusher run on.</summary>
    public WorkqueueSystem WqSystem { get; }

    /// <summary>fs_info->sb.</summary>
    public SuperBlock Sb { get; internal set; } = null!;

    /// <summary>The top-level subvolume (fs_root).</summary>
    public BtrfsRoot FsRoot { get; }

    /// <summary>The extent tree and data allocator.</summary>
    public ExtentTree ExtentRoot { get; }

    /// <summary>The checksum tree.</summary>
    public CsumTree CsumRoot { get; }

    /// <summary>fs_info->ordered_operations_mutex: serializes btrfs_wait_ordered_roots.</summary>
    public KMutex OrderedOperationsMutex { get; }

    /// <summary>i_mutex of the top-level directory (inode 256), where snapshots are created.</summary>
    public KMutex TopDirMutex { get; }

    /// <summary>fs_info->subvol_sem: read-held while creating a snapshot.</summary>
    public RwSemaphore SubvolSem { get; }

    /// <summary>The committed transaction generation (fs_info->generation).</summary>
    public long Generation => Interlocked.Read(ref _generation);

    internal BtrfsIoBioPool IoBioPool { get; } = new();

    /// <summary>The btrfs workqueues (btrfs_init_workqueues).</summary>
    public BtrfsWorkqueues Workqueues { get; internal set; } = null!;

    /// <summary>The snapshots created so far, oldest first.</summary>
    public BtrfsRoot[] Snapshots()
    {
        lock (_snapshots)
        {
            return _snapshots.ToArray();
        }
    }

    internal void SetGeneration(long generation) => Interlocked.Exchange(ref _generation, generation);

    internal BtrfsRoot AddSnapshot(string name, Dictionary<long, (long, FileExtentItem[])> items)
    {
        lock (_snapshots)
        {
            var root = new BtrfsRoot(this, BtrfsRoot.FirstFreeObjectid + _snapshots.Count, name, items);
            _snapshots.Add(root);
            return root;
        }
    }

    internal bool HasSnapshot(string name)
    {
        lock (_snapshots)
        {
            return _snapshots.Exists(r => r.Name == name);
        }
    }
}
