// Mirrors: fs/btrfs/super.c (v4.4): btrfs_sync_fs, btrfs_super_ops, btrfs_mount / btrfs_fill_super,
// btrfs_kill_super; fs/btrfs/disk-io.c open_ctree / close_ctree; fs/super.c generic_shutdown_super and
// fs/sync.c sync_filesystem.
//
// Model: mounting builds the filesystem over a block device: it checks (or, when formatting, writes) the
// superblock, creates the allocator, the csum tree, the top-level subvolume, the btrfs workqueues, the
// "writeback" workqueue with this filesystem's flusher, and the page-cache zone, then publishes the super
// block for sync(2). BtrfsFs is the handle workloads use: create and open files, read and write them
// (buffered or O_DIRECT), fsync, sync, snapshot, unmount. Every entry point must be called from an EmuTask
// and pushes the syscall-level kernel frames.
// btrfs_sync_fs(sb, 0) has nothing to do here (it flushes the btree inode, which Emu does not have);
// btrfs_sync_fs(sb, 1) waits for every ordered extent of every root (btrfs_wait_ordered_roots) - where
// sync(2) hangs behind the v4.4 deadlock - and commits.
// Differs: no mount options parsing (BtrfsMountOptions instead), one device, metadata in memory.
using Emu.Block;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>Mount-time configuration (the mount options and sysctls Emu models).</summary>
public sealed record BtrfsMountOptions
{
    /// <summary>Which lock_extent_direct() to run.</summary>
    public BtrfsMode Mode { get; init; } = BtrfsMode.Unpatched;

    /// <summary>Write a new superblock (mkfs) instead of requiring one Emu wrote before.</summary>
    public bool Format { get; init; } = true;

    /// <summary>Page-cache size limit in bytes (also bounds DIO bounce pages).</summary>
    public long PageCacheBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>vm.dirty_ratio (percent of the page-cache limit).</summary>
    public int DirtyRatio { get; init; } = 20;

    /// <summary>vm.dirty_background_ratio (percent of the page-cache limit).</summary>
    public int DirtyBackgroundRatio { get; init; } = 10;

    /// <summary>vm.dirty_writeback_centisecs: the flusher's period (kernel default 500; scaled down).</summary>
    public int DirtyWritebackCentisecs { get; init; } = 50;

    /// <summary>vm.dirty_expire_centisecs: age at which the periodic pass writes data (kernel default 3000; scaled down).</summary>
    public int DirtyExpireCentisecs { get; init; } = 300;

    /// <summary>thread_pool=: limit_active of the btrfs workqueues; 0 for min(CPUs + 2, 8).</summary>
    public int ThreadPoolSize { get; init; }

    /// <summary>The workqueue subsystem to run on; null to create one the filesystem owns.</summary>
    public WorkqueueSystem? WorkqueueSystem { get; init; }

    /// <summary>NUMA node for page-cache memory; -1 for no preference.</summary>
    public int NumaNode { get; init; } = -1;
}

/// <summary>btrfs_super_ops.</summary>
internal sealed class BtrfsSuperOperations(BtrfsFsInfo fsInfo) : ISuperOperations
{
    /// <summary>btrfs_sync_fs().</summary>
    public int SyncFs(SuperBlock sb, bool wait)
    {
        using KFrame frame = KFunc.Enter("btrfs_sync_fs");
        if (!wait)
        {
            return 0;
        }

        OrderedData.BtrfsWaitOrderedRoots(fsInfo, -1);
        return Transaction.BtrfsCommitTransaction(fsInfo);
    }
}

/// <summary>A mounted Emu btrfs: the entry points workloads call (each from an EmuTask).</summary>
public sealed class BtrfsFs
{
    private static int s_bdiSeq; // the N of "btrfs-N" (bdi_setup_and_register)

    private readonly Workqueue _bdiWq;    // I: "writeback"
    private readonly bool _ownsWqSystem;  // I
    private int _unmounted;               // Interlocked

    private BtrfsFs(BtrfsFsInfo fsInfo, Workqueue bdiWq, bool ownsWqSystem)
    {
        FsInfo = fsInfo;
        _bdiWq = bdiWq;
        _ownsWqSystem = ownsWqSystem;
    }

    /// <summary>The filesystem's fs_info.</summary>
    public BtrfsFsInfo FsInfo { get; }

    /// <summary>The super block.</summary>
    public SuperBlock Sb => FsInfo.Sb;

    /// <summary>The top-level subvolume.</summary>
    public BtrfsRoot FsRoot => FsInfo.FsRoot;

    /// <summary>The lock_extent_direct() mode.</summary>
    public BtrfsMode Mode => FsInfo.Mode;

    /// <summary>The flusher.</summary>
    public BdiWriteback Wb => FsInfo.Sb.Wb;

    /// <summary>The page-cache memory zone.</summary>
    public Zone Zone => FsInfo.Zone;

    /// <summary>
    /// btrfs_mount(): mounts the filesystem on <paramref name="disk"/> (open_ctree). Call from an EmuTask.
    /// </summary>
    /// <exception cref="InvalidDataException">Not formatting, and the device has no superblock Emu wrote.</exception>
    public static BtrfsFs Mount(GenDisk disk, BtrfsMountOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(disk);
        options ??= new BtrfsMountOptions();
        using KFrame frame = KFunc.Enter("btrfs_mount");
        long capacity = disk.Capacity << Blk.SectorShift;
        long dataEnd = capacity / Page.PageSize * Page.PageSize;
        if (dataEnd <= DiskIo.DataStart + 16 * Page.PageSize)
        {
            throw new ArgumentException($"device {disk.DiskName} ({capacity} bytes) is too small for a filesystem", nameof(disk));
        }

        BtrfsMetrics.Publish();
        WorkqueueSystem wqSystem = options.WorkqueueSystem ?? new WorkqueueSystem();
        var zone = new Zone(Math.Max(64, options.PageCacheBytes / Page.PageSize), options.NumaNode)
        {
            DirtyRatio = options.DirtyRatio,
            DirtyBackgroundRatio = options.DirtyBackgroundRatio,
        };
        long generation = 0;
        if (!options.Format && !DiskIo.BtrfsReadDevSuper(disk, zone, out generation))
        {
            zone.Dispose();
            if (options.WorkqueueSystem is null)
            {
                wqSystem.Dispose();
            }

            throw new InvalidDataException($"no Emu filesystem on {disk.DiskName}: its first block does not carry the magic {DiskIo.MagicString} with a valid checksum");
        }

        var csums = new CsumTree(Page.PageSize);
        var extents = new ExtentTree(DiskIo.DataStart, dataEnd, Page.PageSize, csums);
        var fsInfo = new BtrfsFsInfo(options.Mode, disk, zone, wqSystem, extents, csums, generation);
        var sb = new SuperBlock(disk.DiskName, new BtrfsSuperOperations(fsInfo));
        fsInfo.Sb = sb;
        int poolSize = options.ThreadPoolSize > 0 ? options.ThreadPoolSize : BtrfsWorkqueues.DefaultThreadPoolSize(wqSystem.Layout.NrCpus);
        fsInfo.Workqueues = new BtrfsWorkqueues(wqSystem, poolSize);
        Workqueue bdiWq = wqSystem.AllocWorkqueue("writeback", WqFlags.MemReclaim | WqFlags.Freezable | WqFlags.Unbound | WqFlags.Sysfs, 0);
        var wb = new BdiWriteback(bdiWq, "btrfs-" + Interlocked.Increment(ref s_bdiSeq), sb, zone)
        {
            DirtyWritebackCentisecs = options.DirtyWritebackCentisecs,
            DirtyExpireCentisecs = options.DirtyExpireCentisecs,
        };
        sb.Wb = wb;
        zone.ReclaimStalled = wb.StartBackgroundWriteback;
        if (options.Format)
        {
            int ret = DiskIo.WriteCtreeSuper(fsInfo);
            if (ret != 0)
            {
                throw new IOException($"writing the superblock of {disk.DiskName} failed: {ret}");
            }
        }

        sb.Register(mounted: true);
        Klog.Printk($"BTRFS: device fsid {fsInfo.Fsid} devid 1 transid {generation} /dev/{disk.DiskName} ({options.Mode.ToString().ToLowerInvariant()})");
        return new BtrfsFs(fsInfo, bdiWq, options.WorkqueueSystem is null);
    }

    /// <summary>Creates an empty regular file in the top-level subvolume (inodes 257, 258, ...).</summary>
    public BtrfsInode CreateFile() => FsRoot.NewInode();

    /// <summary>The file with inode number <paramref name="ino"/>, if it exists.</summary>
    public BtrfsInode? Lookup(long ino) => FsRoot.Lookup(ino);

    /// <summary>open(2) of an existing file.</summary>
    public VfsFile Open(BtrfsInode inode, OpenFlags flags = OpenFlags.None) => new(inode, inode, flags);

    /// <summary>vfs_write(): writes <paramref name="buffer"/> at <paramref name="pos"/> (O_DIRECT if the file has it).</summary>
    /// <returns>Bytes written, or -errno.</returns>
    public long VfsWrite(VfsFile file, ReadOnlySpan<byte> buffer, long pos) => ReadWrite.VfsWrite(file, buffer, ref pos);

    /// <summary>vfs_read(): reads into <paramref name="buffer"/> at <paramref name="pos"/> (O_DIRECT if the file has it).</summary>
    /// <returns>Bytes read (0 at EOF), or -errno.</returns>
    public long VfsRead(VfsFile file, Span<byte> buffer, long pos) => ReadWrite.VfsRead(file, buffer, ref pos);

    /// <summary>vfs_read() with O_DIRECT set or cleared for this call.</summary>
    public long VfsRead(VfsFile file, Span<byte> buffer, long pos, bool direct) =>
        ReadWrite.VfsRead(file, buffer, ref pos, direct ? KiocbFlags.Direct : KiocbFlags.None, KiocbFlags.Direct);

    /// <summary>fsync(2).</summary>
    public int Fsync(VfsFile file) => FsSync.SysFsync(file);

    /// <summary>sync(2) (every mounted Emu filesystem, as sync(2) does).</summary>
    public void Sync() => FsSync.SysSync();

    /// <summary>ioctl(BTRFS_IOC_SNAP_CREATE_V2): snapshots the top-level subvolume as <paramref name="name"/>. 0 or -errno.</summary>
    public int CreateSnapshot(string name) => Ioctl.BtrfsIoctlSnapCreateV2(FsRoot, name);

    /// <summary>
    /// umount: syncs the filesystem (sync_filesystem), stops the flusher and the btrfs workers, writes the
    /// superblock, drops the page cache and releases its memory. Call from an EmuTask; runs once.
    /// </summary>
    public void Unmount()
    {
        if (Interlocked.Exchange(ref _unmounted, 1) != 0)
        {
            return;
        }

        using KFrame frame = KFunc.Enter("btrfs_kill_super");
        SuperBlock sb = Sb;
        // sync_filesystem()
        sb.Wb.StartWriteback(0, WbReason.Sync);
        sb.SOp.SyncFs(sb, wait: false);
        sb.Wb.SyncInodesSb();
        sb.SOp.SyncFs(sb, wait: true);
        sb.Register(mounted: false);
        sb.Wb.Shutdown();
        // close_ctree()
        FsInfo.Workqueues.BtrfsStopAllWorkers();
        _bdiWq.DestroyWorkqueue();
        DiskIo.WriteCtreeSuper(FsInfo);
        foreach (VfsInode inode in sb.Inodes())
        {
            PageCache.TruncateInodePages(inode.Mapping);
        }

        FsInfo.Zone.Dispose();
        if (_ownsWqSystem)
        {
            FsInfo.WqSystem.Dispose();
        }
    }
}
