// Mirrors: include/linux/fs.h and include/linux/uio.h (v4.4): struct inode (the fields writeback and btrfs
// use), struct super_block, struct file, struct kiocb, struct iov_iter, and include/linux/writeback.h
// struct writeback_control.
//
// Model: the generic VFS objects the mm and writeback code (PageCache, PageWriteback, FsWriteback) work on;
// btrfs derives its inode (BtrfsInode) from VfsInode and supplies the operations tables as interfaces.
// Differs: an iov_iter is one contiguous user buffer (a Span), consumed as the I/O proceeds; user memory is
// ordinary managed or native memory, so there is no fault-in or page pinning. Kiocbs are synchronous only.
//
// Locking legend: IL = VfsInode.ILock (inode->i_lock); WB = the BdiWriteback's ListLock (wb->list_lock).
using System.Runtime.InteropServices;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>inode->i_state bits (include/linux/fs.h, v4.4).</summary>
[Flags]
public enum InodeState
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>Inode metadata is dirty (timestamps). I_DIRTY_SYNC.</summary>
    DirtySync = 1 << 0,

    /// <summary>Inode metadata needed for fdatasync is dirty. I_DIRTY_DATASYNC.</summary>
    DirtyDatasync = 1 << 1,

    /// <summary>The mapping has dirty pages. I_DIRTY_PAGES.</summary>
    DirtyPages = 1 << 2,

    /// <summary>Being set up. I_NEW.</summary>
    New = 1 << 3,

    /// <summary>Being freed. I_FREEING.</summary>
    Freeing = 1 << 5,

    /// <summary>Writeback of this inode is running. I_SYNC.</summary>
    Sync = 1 << 7,

    /// <summary>I_DIRTY: any of the dirty bits.</summary>
    Dirty = DirtySync | DirtyDatasync | DirtyPages,
}

/// <summary>struct inode: the generic part of an inode.</summary>
public abstract class VfsInode
{
    internal readonly Lock ILock = new();  // inode->i_lock
    private long _iSize;                    // i_size_read/i_size_write
    internal InodeState IState;             // IL
    internal long DirtiedWhen;              // WB: ms, Environment.TickCount64 (jiffies)
    internal InodeIoList? IoList;           // WB: which of b_dirty/b_io/b_more_io holds the inode
    internal VfsInode? IoPrev;              // WB: i_io_list links
    internal VfsInode? IoNext;              // WB

    /// <param name="sb">The owning super block.</param>
    /// <param name="ino">Inode number (i_ino).</param>
    protected VfsInode(SuperBlock sb, long ino)
    {
        Sb = sb;
        Ino = ino;
        IMutex = new KMutex("&sb->s_type->i_mutex_key");
    }

    /// <summary>i_ino.</summary>
    public long Ino { get; }

    /// <summary>i_sb.</summary>
    public SuperBlock Sb { get; }

    /// <summary>i_mutex (class "&amp;sb->s_type->i_mutex_key").</summary>
    public KMutex IMutex { get; }

    /// <summary>i_mapping: the page cache of the inode. Set once by the filesystem at inode creation.</summary>
    public AddressSpace Mapping { get; protected init; } = null!;

    /// <summary>i_size_read().</summary>
    public long ISize => Volatile.Read(ref _iSize);

    /// <summary>i_state, read racily.</summary>
    public InodeState State
    {
        get
        {
            lock (ILock)
            {
                return IState;
            }
        }
    }

    /// <summary>i_size_write(): callers serialize (i_mutex, or the io-tree range lock in btrfs).</summary>
    public void ISizeWrite(long size) => Volatile.Write(ref _iSize, size);
}

/// <summary>struct super_operations: the callbacks sync and writeback use.</summary>
public interface ISuperOperations
{
    /// <summary>->sync_fs(sb, wait).</summary>
    int SyncFs(SuperBlock sb, bool wait);
}

/// <summary>struct super_block.</summary>
public sealed class SuperBlock
{
    private static readonly Lock s_superBlocksLock = new();          // sb_lock
    private static readonly List<SuperBlock> s_superBlocks = new();  // super_blocks, under sb_lock
    private readonly Lock _inodesLock = new();                       // sb->s_inode_list_lock
    private readonly List<VfsInode> _inodes = new();                 // sb->s_inodes

    /// <param name="id">s_id, the device name in messages, e.g. "emu0".</param>
    /// <param name="sOp">The filesystem's super operations.</param>
    public SuperBlock(string id, ISuperOperations sOp)
    {
        SId = id;
        SOp = sOp;
        SUmount = new RwSemaphore("&type->s_umount_key");
        SWriters = new RwSemaphore("sb_writers");
    }

    /// <summary>s_id.</summary>
    public string SId { get; }

    /// <summary>s_op.</summary>
    public ISuperOperations SOp { get; }

    /// <summary>s_umount (class "&amp;type->s_umount_key"): read-held by sync and by the flusher while writing back.</summary>
    public RwSemaphore SUmount { get; }

    /// <summary>s_writers (class "sb_writers"), taken shared by sb_start_write around modifications.</summary>
    public RwSemaphore SWriters { get; }

    /// <summary>The writeback context of the filesystem's backing device (sb->s_bdi->wb). Set at mount.</summary>
    public BdiWriteback Wb { get; internal set; } = null!;

    /// <summary>Every mounted super block (super_blocks), for iterate_supers.</summary>
    public static SuperBlock[] All()
    {
        lock (s_superBlocksLock)
        {
            return s_superBlocks.ToArray();
        }
    }

    /// <summary>The inodes of this super block (sb->s_inodes).</summary>
    public VfsInode[] Inodes()
    {
        lock (_inodesLock)
        {
            return _inodes.ToArray();
        }
    }

    // sget() / generic_shutdown_super(): (un)publishes the super block.
    internal void Register(bool mounted)
    {
        lock (s_superBlocksLock)
        {
            if (mounted)
            {
                s_superBlocks.Add(this);
            }
            else
            {
                s_superBlocks.Remove(this);
            }
        }
    }

    // inode_sb_list_add()
    internal void InodeSbListAdd(VfsInode inode)
    {
        lock (_inodesLock)
        {
            _inodes.Add(inode);
        }
    }
}

/// <summary>Open-file flags (O_*).</summary>
[Flags]
public enum OpenFlags
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>O_APPEND.</summary>
    Append = 0x400,

    /// <summary>O_DSYNC.</summary>
    Dsync = 0x1000,

    /// <summary>O_DIRECT: bypass the page cache where alignment allows.</summary>
    Direct = 0x4000,
}

/// <summary>struct file_operations: the callbacks the read/write/fsync syscalls use.</summary>
public interface IFileOperations
{
    /// <summary>->read_iter().</summary>
    long ReadIter(ref Kiocb iocb, ref IovIter iter);

    /// <summary>->write_iter().</summary>
    long WriteIter(ref Kiocb iocb, ref IovIter iter);

    /// <summary>->fsync(file, start, end, datasync).</summary>
    int Fsync(VfsFile file, long start, long end, bool datasync);
}

/// <summary>struct file.</summary>
public sealed class VfsFile
{
    internal VfsFile(VfsInode inode, IFileOperations fOp, OpenFlags flags)
    {
        Inode = inode;
        FOp = fOp;
        Flags = flags;
        FPosLock = new KMutex("&f->f_pos_lock");
    }

    /// <summary>f_inode.</summary>
    public VfsInode Inode { get; }

    /// <summary>f_mapping.</summary>
    public AddressSpace Mapping => Inode.Mapping;

    /// <summary>f_op.</summary>
    public IFileOperations FOp { get; }

    /// <summary>f_flags; O_DIRECT may be toggled (fcntl F_SETFL).</summary>
    public OpenFlags Flags { get; set; }

    /// <summary>f_pos, under <see cref="FPosLock"/> for read(2)/write(2).</summary>
    public long Pos { get; set; }

    /// <summary>f_pos_lock (class "&amp;f->f_pos_lock"), taken by read(2)/write(2) (__fdget_pos).</summary>
    public KMutex FPosLock { get; }
}

/// <summary>iocb->ki_flags.</summary>
[Flags]
public enum KiocbFlags
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>IOCB_APPEND.</summary>
    Append = 1 << 1,

    /// <summary>IOCB_DIRECT.</summary>
    Direct = 1 << 2,

    /// <summary>IOCB_DSYNC.</summary>
    Dsync = 1 << 4,
}

/// <summary>struct kiocb (synchronous only).</summary>
public struct Kiocb
{
    /// <summary>init_sync_kiocb().</summary>
    public Kiocb(VfsFile file, long pos)
    {
        KiFilp = file;
        KiPos = pos;
        OpenFlags f = file.Flags;
        KiFlags = ((f & OpenFlags.Direct) != 0 ? KiocbFlags.Direct : 0) |
                  ((f & OpenFlags.Dsync) != 0 ? KiocbFlags.Dsync : 0) |
                  ((f & OpenFlags.Append) != 0 ? KiocbFlags.Append : 0);
    }

    /// <summary>ki_filp.</summary>
    public VfsFile KiFilp;

    /// <summary>ki_pos.</summary>
    public long KiPos;

    /// <summary>ki_flags.</summary>
    public KiocbFlags KiFlags;
}

/// <summary>struct iov_iter over one user buffer: the bytes not yet transferred.</summary>
public ref struct IovIter
{
    private readonly Span<byte> _buffer;
    private readonly bool _write;
    private int _done;

    /// <summary>An iterator over a read destination (iov_iter_rw() == READ).</summary>
    public IovIter(Span<byte> buffer)
    {
        _buffer = buffer;
        _write = false;
        _done = 0;
    }

    /// <summary>An iterator over a write source (iov_iter_rw() == WRITE).</summary>
    public IovIter(ReadOnlySpan<byte> buffer)
    {
        _buffer = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(buffer), buffer.Length);
        _write = true;
        _done = 0;
    }

    /// <summary>iov_iter_rw() == WRITE: the buffer is the source of a write.</summary>
    public readonly bool IsWrite => _write;

    /// <summary>iov_iter_count(): bytes left.</summary>
    public readonly int Count => _buffer.Length - _done;

    /// <summary>Bytes transferred so far.</summary>
    public readonly int Done => _done;

    /// <summary>The bytes not yet transferred.</summary>
    public readonly Span<byte> Remaining => _buffer[_done..];

    /// <summary>iov_iter_advance().</summary>
    public void Advance(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, Count);
        _done += bytes;
    }

    /// <summary>copy_page_to_iter(): copies into the buffer and advances.</summary>
    public int CopyTo(ReadOnlySpan<byte> source)
    {
        int n = Math.Min(source.Length, Count);
        source[..n].CopyTo(_buffer[_done..]);
        _done += n;
        return n;
    }

    /// <summary>iov_iter_copy_from_user_atomic(): copies from the buffer without advancing.</summary>
    public readonly int CopyFrom(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, Count);
        _buffer.Slice(_done, n).CopyTo(destination);
        return n;
    }
}

/// <summary>enum writeback_sync_modes.</summary>
public enum WbSyncMode
{
    /// <summary>Don't wait on anything. WB_SYNC_NONE.</summary>
    None = 0,

    /// <summary>Wait on every mapping (data integrity). WB_SYNC_ALL.</summary>
    All = 1,
}

/// <summary>struct writeback_control.</summary>
public sealed class WritebackControl
{
    /// <summary>Pages left to write; decremented per page written.</summary>
    public long NrToWrite { get; set; }

    /// <summary>Pages not written (pages_skipped).</summary>
    public long PagesSkipped { get; set; }

    /// <summary>First byte of the range (range_start).</summary>
    public long RangeStart { get; set; }

    /// <summary>Last byte of the range (range_end, inclusive).</summary>
    public long RangeEnd { get; set; } = long.MaxValue;

    /// <summary>sync_mode.</summary>
    public WbSyncMode SyncMode { get; set; }

    /// <summary>Write from writeback_index and wrap (range_cyclic).</summary>
    public bool RangeCyclic { get; set; }

    /// <summary>for_kupdate.</summary>
    public bool ForKupdate { get; set; }

    /// <summary>for_background.</summary>
    public bool ForBackground { get; set; }

    /// <summary>for_sync.</summary>
    public bool ForSync { get; set; }
}
