// Mirrors: fs/sync.c (v4.4): sys_sync, sync_inodes_one_sb, sync_fs_one_sb, SyS_fsync, vfs_fsync_range;
// fs/super.c iterate_supers; fs/fs-writeback.c wakeup_flusher_threads.
//
// Model: sync(2) kicks every flusher, then for each mounted filesystem (holding its s_umount for read):
// a WB_SYNC_ALL writeback pass through the flusher that it waits for, ->sync_fs(sb, 0), and
// ->sync_fs(sb, 1) - for btrfs the last waits for every ordered extent (btrfs_wait_ordered_roots) and
// commits. fsync goes to the file's ->fsync.
// Differs: no block-device (bdev inode) flushing pass.
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>fs/sync.c.</summary>
public static class FsSync
{
    /// <summary>sync(2).</summary>
    public static void SysSync()
    {
        using KFrame frame = KFunc.Enter("sys_sync");
        WakeupFlusherThreads(WbReason.Sync);
        IterateSupers(static sb => sb.Wb.SyncInodesSb(), "sync_inodes_one_sb");
        IterateSupers(static sb => sb.SOp.SyncFs(sb, wait: false), "sync_fs_one_sb");
        IterateSupers(static sb => sb.SOp.SyncFs(sb, wait: true), "sync_fs_one_sb");
    }

    /// <summary>fsync(2).</summary>
    public static int SysFsync(VfsFile file)
    {
        using KFrame frame = KFunc.Enter("SyS_fsync");
        return VfsFsyncRange(file, 0, long.MaxValue);
    }

    /// <summary>vfs_fsync_range(): the file's -&gt;fsync over [start, end].</summary>
    public static int VfsFsyncRange(VfsFile file, long start, long end)
    {
        using KFrame frame = KFunc.Enter("vfs_fsync_range");
        return file.FOp.Fsync(file, start, end, datasync: false);
    }

    /// <summary>wakeup_flusher_threads(0): a WB_SYNC_NONE pass over all dirty pages of every filesystem.</summary>
    public static void WakeupFlusherThreads(WbReason reason)
    {
        foreach (SuperBlock sb in SuperBlock.All())
        {
            sb.Wb.StartWriteback(0, reason);
        }
    }

    // iterate_supers(): calls f on each mounted super block under its s_umount (read).
    private static void IterateSupers(Action<SuperBlock> f, string fname)
    {
        using KFrame frame = KFunc.Enter("iterate_supers");
        foreach (SuperBlock sb in SuperBlock.All())
        {
            sb.SUmount.DownRead();
            try
            {
                using KFrame inner = KFunc.Enter(fname);
                f(sb);
            }
            finally
            {
                sb.SUmount.UpRead();
            }
        }
    }
}
