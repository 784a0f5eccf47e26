// Mirrors: fs/btrfs/btrfs_inode.h (v4.4) struct btrfs_inode, and fs/btrfs/inode.c btrfs_set_bit_hook /
// btrfs_clear_bit_hook with btrfs_add_delalloc_inodes / btrfs_del_delalloc_inode.
//
// Model: a btrfs inode is a VFS inode plus its io tree (range locks and delalloc bits), its ordered-extent
// tree, its extent-map cache and its file extent items. The io tree's bit hooks count delalloc bytes and keep
// the inode on its root's delalloc list while it has any, which is what btrfs_start_delalloc_inodes walks.
// The inode is its own address_space_operations (btrfs_aops) and file_operations (btrfs_file_operations),
// delegating to the functions in ExtentIo.cs, Inode.cs and File.cs.
// Differs: no inode item on disk, no outstanding-extents or qgroup accounting.
//
// Locking legend: I = set at init; IL = ILock (BTRFS_I(inode)->lock); RD = Root.DelallocLock.
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>struct btrfs_inode.</summary>
public sealed class BtrfsInode : VfsInode, IExtentIoTreeHooks, IAddressSpaceOperations, IFileOperations
{
    private long _delallocBytes;                       // IL
    private LinkedListNode<BtrfsInode>? _delallocNode; // RD: on root->delalloc_inodes
    private long _diskISize;                           // written by btrfs_finish_ordered_io under the range lock

    internal BtrfsInode(BtrfsRoot root, long ino)
        : base(root.FsInfo.Sb, ino)
    {
        Root = root;
        IoTree = new ExtentIoTree(ino, this);
        OrderedTree = new OrderedInodeTree();
        ExtentMaps = new ExtentMapTree();
        FileExtents = new FileExtentTree();
        Mapping = new AddressSpace(this, root.FsInfo.Zone, this);
    }

    /// <summary>BTRFS_I(inode)->root.</summary>
    public BtrfsRoot Root { get; }

    /// <summary>root->fs_info.</summary>
    public BtrfsFsInfo FsInfo => Root.FsInfo;

    /// <summary>io_tree: range locks, delalloc and uptodate bits.</summary>
    public ExtentIoTree IoTree { get; }

    /// <summary>ordered_tree.</summary>
    public OrderedInodeTree OrderedTree { get; }

    /// <summary>extent_tree: the extent-map cache.</summary>
    public ExtentMapTree ExtentMaps { get; }

    /// <summary>The inode's file extent items (EXTENT_DATA keys of its subvolume tree).</summary>
    public FileExtentTree FileExtents { get; }

    /// <summary>delalloc_bytes: bytes with EXTENT_DELALLOC in the io tree.</summary>
    public long DelallocBytes
    {
        get
        {
            lock (ILock)
            {
                return _delallocBytes;
            }
        }
    }

    /// <summary>disk_i_size: the size recorded with the last finished ordered extent.</summary>
    public long DiskISize => Volatile.Read(ref _diskISize);

    /// <inheritdoc />
    public override string ToString() => $"inode {Ino}";

    internal void UpdateDiskISize(long end) => Volatile.Write(ref _diskISize, Math.Min(ISize, Math.Max(DiskISize, end)));

    /// <summary>btrfs_set_bit_hook(): newly delalloc bytes are counted; the first puts the inode on the delalloc list.</summary>
    void IExtentIoTreeHooks.SetBitHook(long start, long end, ExtentBits oldBits, ExtentBits bits)
    {
        if ((bits & ExtentBits.Delalloc) == 0 || (oldBits & ExtentBits.Delalloc) != 0)
        {
            return;
        }

        bool first;
        lock (ILock)
        {
            first = _delallocBytes == 0;
            _delallocBytes += end - start + 1;
        }

        if (first)
        {
            lock (Root.DelallocLock)
            {
                _delallocNode ??= Root.DelallocInodes.AddLast(this);
            }
        }
    }

    /// <summary>btrfs_clear_bit_hook(): cleared delalloc bytes are uncounted; the last takes the inode off the list.</summary>
    void IExtentIoTreeHooks.ClearBitHook(long start, long end, ExtentBits oldBits, ExtentBits bits)
    {
        if ((bits & ExtentBits.Delalloc) == 0 || (oldBits & ExtentBits.Delalloc) == 0)
        {
            return;
        }

        bool last;
        lock (ILock)
        {
            _delallocBytes -= end - start + 1;
            last = _delallocBytes == 0;
        }

        if (last)
        {
            lock (Root.DelallocLock)
            {
                if (_delallocNode is not null)
                {
                    Root.DelallocInodes.Remove(_delallocNode);
                    _delallocNode = null;
                }
            }
        }
    }

    /// <inheritdoc />
    int IAddressSpaceOperations.WritePages(AddressSpace mapping, WritebackControl wbc) => Inode.BtrfsWritepages(this, wbc);

    /// <inheritdoc />
    int IAddressSpaceOperations.ReadPage(VfsFile? file, Page page) => Inode.BtrfsReadpage(this, page);

    /// <inheritdoc />
    bool IAddressSpaceOperations.ReleasePage(Page page) => Inode.BtrfsReleasepage(this, page);

    /// <inheritdoc />
    long IAddressSpaceOperations.DirectIO(ref Kiocb iocb, ref IovIter iter) => Inode.BtrfsDirectIO(this, ref iocb, ref iter);

    /// <inheritdoc />
    long IFileOperations.ReadIter(ref Kiocb iocb, ref IovIter iter) => PageCache.GenericFileReadIter(ref iocb, ref iter);

    /// <inheritdoc />
    long IFileOperations.WriteIter(ref Kiocb iocb, ref IovIter iter) => BtrfsFileOperations.BtrfsFileWriteIter(ref iocb, ref iter);

    /// <inheritdoc />
    int IFileOperations.Fsync(VfsFile file, long start, long end, bool datasync) => BtrfsFileOperations.BtrfsSyncFile(file, start, end);
}
