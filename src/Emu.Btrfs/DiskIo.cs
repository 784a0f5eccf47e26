// Mirrors: fs/btrfs/disk-io.c (v4.4): btrfs_init_workqueues, btrfs_stop_all_workers, btrfs_bio_wq_end_io,
// end_workqueue_bio / end_workqueue_fn, write_dev_supers / write_ctree_super, btrfs_read_dev_super; and
// fs/btrfs/volumes.h struct btrfs_io_bio.
//
// Model: the btrfs workqueues are created at mount with v4.4's flags, limits and thresholds (see
// kernel-paths.md section 7); flush_delalloc starts with one active item and grows only when more than 32
// are pending. Data read bios complete in two steps: the device completion (irq context) only queues the
// bio on the endio workers, where its real end_io (checksum checks, unlocking ranges) runs and may sleep.
// The superblock is one 4 KiB block at offset 0 of the device: csum, fsid, the Emu magic, generation, size.
// Differs: the superblock is Emu's own format at offset 0 (btrfs keeps copies at 64 KiB, 64 MiB, 256 GiB
// with the magic "_BHRfS_M"); it records no tree roots because metadata stays in memory - mounting a
// filesystem Emu made before gives an empty filesystem with the old generation. btrfs_io_bio contexts are
// pooled instead of allocated per bio.
//
// Locking legend: P = the pool's lock.
using System.Buffers.Binary;
using System.Text;
using Emu.Block;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>The btrfs workqueues of one filesystem (the fs_info members btrfs_init_workqueues sets up).</summary>
public sealed class BtrfsWorkqueues
{
    private const WqFlags Flags = WqFlags.MemReclaim | WqFlags.Freezable | WqFlags.Unbound;

    private readonly List<BtrfsWorkqueue> _all = new(); // I

    internal BtrfsWorkqueues(WorkqueueSystem system, int threadPoolSize)
    {
        int ma = threadPoolSize;
        Workers = Alloc(system, "worker", Flags | WqFlags.Highpri, ma, 16);
        DelallocWorkers = Alloc(system, "delalloc", Flags, ma, 2);
        FlushWorkers = Alloc(system, "flush_delalloc", Flags, ma, 0);
        CachingWorkers = Alloc(system, "cache", Flags, ma, 0);
        SubmitWorkers = Alloc(system, "submit", Flags, Math.Min(1, ma), 64);
        FixupWorkers = Alloc(system, "fixup", Flags, 1, 0);
        EndioWorkers = Alloc(system, "endio", Flags, ma, 4);
        EndioMetaWorkers = Alloc(system, "endio-meta", Flags, ma, 4);
        EndioMetaWriteWorkers = Alloc(system, "endio-meta-write", Flags, ma, 2);
        EndioRaid56Workers = Alloc(system, "endio-raid56", Flags, ma, 4);
        EndioRepairWorkers = Alloc(system, "endio-repair", Flags, 1, 0);
        RmwWorkers = Alloc(system, "rmw", Flags, ma, 2);
        EndioWriteWorkers = Alloc(system, "endio-write", Flags, ma, 2);
        EndioFreespaceWorker = Alloc(system, "freespace-write", Flags, ma, 0);
        DelayedWorkers = Alloc(system, "delayed-meta", Flags, ma, 0);
        ReadaheadWorkers = Alloc(system, "readahead", Flags, ma, 2);
        QgroupRescanWorkers = Alloc(system, "qgroup-rescan", Flags, 1, 0);
        ExtentWorkers = Alloc(system, "extent-refs", Flags, Math.Min(1, ma), 8);
    }

    /// <summary>thread_pool_size default: min(number of CPUs + 2, 8).</summary>
    public static int DefaultThreadPoolSize(int nrCpus) => Math.Min(nrCpus + 2, 8);

    /// <summary>fs_info->workers ("btrfs-worker", HIGHPRI): async checksumming and submission.</summary>
    public BtrfsWorkqueue Workers { get; }

    /// <summary>fs_info->delalloc_workers ("btrfs-delalloc"): compressed delalloc.</summary>
    public BtrfsWorkqueue DelallocWorkers { get; }

    /// <summary>fs_info->flush_workers ("btrfs-flush_delalloc"): delalloc and ordered-extent flushing; starts with max_active 1.</summary>
    public BtrfsWorkqueue FlushWorkers { get; }

    /// <summary>fs_info->caching_workers ("btrfs-cache").</summary>
    public BtrfsWorkqueue CachingWorkers { get; }

    /// <summary>fs_info->submit_workers ("btrfs-submit").</summary>
    public BtrfsWorkqueue SubmitWorkers { get; }

    /// <summary>fs_info->fixup_workers ("btrfs-fixup"): pages dirtied outside delalloc.</summary>
    public BtrfsWorkqueue FixupWorkers { get; }

    /// <summary>fs_info->endio_workers ("btrfs-endio"): data read completions (checksums, range unlocks).</summary>
    public BtrfsWorkqueue EndioWorkers { get; }

    /// <summary>fs_info->endio_meta_workers ("btrfs-endio-meta").</summary>
    public BtrfsWorkqueue EndioMetaWorkers { get; }

    /// <summary>fs_info->endio_meta_write_workers ("btrfs-endio-meta-write").</summary>
    public BtrfsWorkqueue EndioMetaWriteWorkers { get; }

    /// <summary>fs_info->endio_raid56_workers ("btrfs-endio-raid56").</summary>
    public BtrfsWorkqueue EndioRaid56Workers { get; }

    /// <summary>fs_info->endio_repair_workers ("btrfs-endio-repair").</summary>
    public BtrfsWorkqueue EndioRepairWorkers { get; }

    /// <summary>fs_info->rmw_workers ("btrfs-rmw").</summary>
    public BtrfsWorkqueue RmwWorkers { get; }

    /// <summary>fs_info->endio_write_workers ("btrfs-endio-write"): btrfs_finish_ordered_io.</summary>
    public BtrfsWorkqueue EndioWriteWorkers { get; }

    /// <summary>fs_info->endio_freespace_worker ("btrfs-freespace-write").</summary>
    public BtrfsWorkqueue EndioFreespaceWorker { get; }

    /// <summary>fs_info->delayed_workers ("btrfs-delayed-meta").</summary>
    public BtrfsWorkqueue DelayedWorkers { get; }

    /// <summary>fs_info->readahead_workers ("btrfs-readahead").</summary>
    public BtrfsWorkqueue ReadaheadWorkers { get; }

    /// <summary>fs_info->qgroup_rescan_workers ("btrfs-qgroup-rescan").</summary>
    public BtrfsWorkqueue QgroupRescanWorkers { get; }

    /// <summary>fs_info->extent_workers ("btrfs-extent-refs").</summary>
    public BtrfsWorkqueue ExtentWorkers { get; }

    /// <summary>btrfs_init_work(): sets the work's helper (the per-workqueue entry symbol) and function.</summary>
    internal void InitWork(BtrfsWork work, string helper, Action<BtrfsWork> func) =>
        AsyncThread.BtrfsInitWork(work, helper, func, null, null);

    /// <summary>btrfs_stop_all_workers(): destroys every workqueue, running what is still queued.</summary>
    internal void BtrfsStopAllWorkers()
    {
        foreach (BtrfsWorkqueue wq in _all)
        {
            AsyncThread.BtrfsDestroyWorkqueue(wq);
        }
    }

    private BtrfsWorkqueue Alloc(WorkqueueSystem system, string name, WqFlags flags, int limitActive, int thresh)
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(system, name, flags, limitActive, thresh);
        _all.Add(wq);
        return wq;
    }
}

/// <summary>
/// struct btrfs_io_bio + struct btrfs_end_io_wq: a btrfs bio's expected checksums and its deferred completion.
/// Pooled per filesystem (its work item belongs to that filesystem's workqueues); the bio's BiPrivate while in
/// flight.
/// </summary>
internal sealed class BtrfsIoBio : BtrfsWork
{
    public BtrfsInode? Inode;      // whose data
    public Bio? Bio;               // the bio whose completion this defers
    public Action<Bio>? EndIo;     // the real end_io, run on the endio worker
    public object? Private;        // the real bi_private (e.g. btrfs_dio_private)
    public uint[] Csums = new uint[Blk.BioMaxPages];
    public bool[] CsumMissing = new bool[Blk.BioMaxPages];

    private BtrfsIoBio(BtrfsIoBioPool pool) => Pool = pool;

    private BtrfsIoBioPool Pool { get; }

    public static BtrfsIoBio From(Bio bio) => (BtrfsIoBio)bio.BiPrivate!;

    public static BtrfsIoBio Create(BtrfsIoBioPool pool) => new(pool);

    public void EnsureCapacity(int sectors)
    {
        if (Csums.Length < sectors)
        {
            Csums = new uint[sectors];
            CsumMissing = new bool[sectors];
        }
    }

    public void Release()
    {
        Inode = null;
        Bio = null;
        EndIo = null;
        Private = null;
        Pool.Return(this);
    }
}

/// <summary>The btrfs_io_bio cache of one filesystem (btrfs_bioset).</summary>
internal sealed class BtrfsIoBioPool
{
    private readonly Lock _lock = new();
    private readonly Stack<BtrfsIoBio> _free = new(); // P

    public BtrfsIoBio Rent(int sectors)
    {
        BtrfsIoBio? ioBio;
        lock (_lock)
        {
            _free.TryPop(out ioBio);
        }

        ioBio ??= BtrfsIoBio.Create(this);
        ioBio.EnsureCapacity(sectors);
        return ioBio;
    }

    public void Return(BtrfsIoBio ioBio)
    {
        lock (_lock)
        {
            _free.Push(ioBio);
        }
    }
}

/// <summary>fs/btrfs/disk-io.c.</summary>
public static class DiskIo
{
    /// <summary>Size of the superblock block at offset 0.</summary>
    public const int SuperInfoSize = 4096;

    /// <summary>Where file data starts on the device: everything before is reserved for the superblock.</summary>
    public const long DataStart = 1024 * 1024;

    /// <summary>The magic that marks a device formatted by Emu (at byte 0x40 of the superblock).</summary>
    public static ReadOnlySpan<byte> EmuMagic => "EMU_BTRF"u8;

    private const int CsumOffset = 0;
    private const int FsidOffset = 0x20;
    private const int MagicOffset = 0x40;
    private const int GenerationOffset = 0x48;
    private const int TotalBytesOffset = 0x50;
    private const int SectorSizeOffset = 0x58;
    private const int CsummedStart = 0x20;

    private static readonly Action<Bio> s_endWorkqueueBio = EndWorkqueueBio;
    private static readonly Action<BtrfsWork> s_endWorkqueueFn = static w => EndWorkqueueFn((BtrfsIoBio)w);

    /// <summary>
    /// btrfs_bio_wq_end_io(): the bio's completion (its current BiEndIo and BiPrivate) is moved to the endio
    /// workers; the returned context carries the checksums to verify there.
    /// </summary>
    internal static BtrfsIoBio BtrfsBioWqEndIo(BtrfsFsInfo fsInfo, Bio bio, BtrfsInode inode)
    {
        BtrfsIoBio ioBio = fsInfo.IoBioPool.Rent((int)(bio.BiSize / fsInfo.SectorSize));
        ioBio.Inode = inode;
        ioBio.Bio = bio;
        ioBio.EndIo = bio.BiEndIo;
        ioBio.Private = bio.BiPrivate;
        bio.BiPrivate = ioBio;
        bio.BiEndIo = s_endWorkqueueBio;
        return ioBio;
    }

    /// <summary>
    /// Reads the superblock of <paramref name="disk"/>: whether it carries Emu's magic with a valid checksum,
    /// and its generation. Call from an emulated task.
    /// </summary>
    public static bool BtrfsReadDevSuper(GenDisk disk, Zone zone, out long generation)
    {
        using KFrame frame = KFunc.Enter("btrfs_read_dev_super");
        generation = 0;
        nint buf = zone.AllocPage();
        try
        {
            Bio bio = Bio.Alloc(1);
            bio.BiOp = ReqOp.Read;
            bio.BiSector = 0;
            bio.AddBuffer(buf, SuperInfoSize);
            if (Volumes.SubmitBioWait(disk, bio) != 0)
            {
                return false;
            }

            Span<byte> sb = zone.FrameSpan(buf);
            if (!sb.Slice(MagicOffset, 8).SequenceEqual(EmuMagic))
            {
                return false;
            }

            if (BinaryPrimitives.ReadUInt32LittleEndian(sb[CsumOffset..]) != Crc32c.Compute(sb[CsummedStart..SuperInfoSize]))
            {
                return false;
            }

            generation = BinaryPrimitives.ReadInt64LittleEndian(sb[GenerationOffset..]);
            return true;
        }
        finally
        {
            zone.FreePage(buf);
        }
    }

    /// <summary>
    /// write_ctree_super(): writes the superblock with the current generation (preflush + FUA). 0 or -errno.
    /// </summary>
    public static int WriteCtreeSuper(BtrfsFsInfo fsInfo)
    {
        using KFrame frame = KFunc.Enter("write_ctree_super");
        Zone zone = fsInfo.Zone;
        nint buf = zone.AllocPage();
        try
        {
            Span<byte> sb = zone.FrameSpan(buf);
            sb.Clear();
            fsInfo.Fsid.TryWriteBytes(sb.Slice(FsidOffset, 16));
            EmuMagic.CopyTo(sb[MagicOffset..]);
            BinaryPrimitives.WriteInt64LittleEndian(sb[GenerationOffset..], fsInfo.Generation);
            BinaryPrimitives.WriteInt64LittleEndian(sb[TotalBytesOffset..], fsInfo.Disk.Capacity << Blk.SectorShift);
            BinaryPrimitives.WriteInt32LittleEndian(sb[SectorSizeOffset..], fsInfo.SectorSize);
            BinaryPrimitives.WriteUInt32LittleEndian(sb[CsumOffset..], Crc32c.Compute(sb[CsummedStart..SuperInfoSize]));
            Bio bio = Bio.Alloc(1);
            bio.BiOp = ReqOp.Write;
            bio.BiFlags = ReqFlags.Sync | ReqFlags.Meta | ReqFlags.Preflush | ReqFlags.Fua;
            bio.BiSector = 0;
            bio.AddBuffer(buf, SuperInfoSize);
            int ret = Volumes.SubmitBioWait(fsInfo.Disk, bio);
            if (ret != 0)
            {
                Klog.Printk($"BTRFS error (device {fsInfo.Sb.SId}): error writing primary super block to device 1: {ret}");
            }

            return ret;
        }
        finally
        {
            zone.FreePage(buf);
        }
    }

    /// <summary>A human-readable name for the magic, for messages.</summary>
    public static string MagicString => Encoding.ASCII.GetString(EmuMagic);

    // end_workqueue_bio(): completion context: defer the real end_io to the endio workers.
    private static void EndWorkqueueBio(Bio bio)
    {
        BtrfsIoBio ioBio = BtrfsIoBio.From(bio);
        BtrfsFsInfo fsInfo = ioBio.Inode!.FsInfo;
        fsInfo.Workqueues.InitWork(ioBio, "btrfs_endio_helper", s_endWorkqueueFn);
        AsyncThread.BtrfsQueueWork(fsInfo.Workqueues.EndioWorkers, ioBio);
    }

    // end_workqueue_fn(): the real end_io, on an endio worker.
    private static void EndWorkqueueFn(BtrfsIoBio ioBio)
    {
        using KFrame frame = KFunc.Enter("end_workqueue_fn");
        ioBio.EndIo!(ioBio.Bio!);
    }
}
