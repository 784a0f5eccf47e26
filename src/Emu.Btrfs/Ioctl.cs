// Mirrors: fs/btrfs/ioctl.c (v4.4): btrfs_ioctl_snap_create_v2, btrfs_ioctl_snap_create_transid,
// btrfs_mksubvol, create_snapshot; fs/namespace.c mnt_want_write_file.
//
// Model: creating a snapshot takes sb_writers, the parent directory's i_mutex and subvol_sem (read), then
// flushes the subvolume's delalloc (btrfs_start_delalloc_inodes: one filemap_flush work per delalloc inode
// on flush_delalloc, waited for) and waits for all its ordered extents (btrfs_wait_ordered_extents under
// root->ordered_extent_mutex), and commits the transaction with the snapshot. When a flush work blocks, the
// snapshot task waits forever in wait_for_completion holding those locks - one of the seed's victims.
// Differs: the snapshot is a copy of the subvolume's file extent items taking a reference on every extent
// (metadata only, no shared tree blocks); create_snapshot is inlined into btrfs_mksubvol, as in the seed's
// trace.
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>fs/btrfs/ioctl.c.</summary>
public static class Ioctl
{
    /// <summary>
    /// ioctl(BTRFS_IOC_SNAP_CREATE_V2) on the top-level directory: snapshots <paramref name="root"/> as
    /// <paramref name="name"/>. 0, -EEXIST, or -errno.
    /// </summary>
    public static int BtrfsIoctlSnapCreateV2(BtrfsRoot root, string name)
    {
        using KFrame sys = KFunc.Enter("SyS_ioctl");
        using KFrame vfs = KFunc.Enter("do_vfs_ioctl");
        using KFrame ioctl = KFunc.Enter("btrfs_ioctl");
        using KFrame frame = KFunc.Enter("btrfs_ioctl_snap_create_v2");
        return BtrfsIoctlSnapCreateTransid(root, name);
    }

    // btrfs_ioctl_snap_create_transid(): mnt_want_write_file around btrfs_mksubvol.
    private static int BtrfsIoctlSnapCreateTransid(BtrfsRoot root, string name)
    {
        using KFrame frame = KFunc.Enter("btrfs_ioctl_snap_create_transid");
        if (string.IsNullOrEmpty(name) || name.Contains('/') || name is "." or "..")
        {
            return -Errno.EINVAL;
        }

        SuperBlock sb = root.FsInfo.Sb;
        ReadWrite.FileStartWrite(sb); // mnt_want_write_file()
        try
        {
            return BtrfsMksubvol(root, name);
        }
        finally
        {
            sb.SWriters.UpRead();
        }
    }

    // btrfs_mksubvol(): parent i_mutex, name checks, subvol_sem, create_snapshot.
    private static int BtrfsMksubvol(BtrfsRoot root, string name)
    {
        using KFrame frame = KFunc.Enter("btrfs_mksubvol");
        BtrfsFsInfo fsInfo = root.FsInfo;
        fsInfo.TopDirMutex.Lock();
        try
        {
            if (fsInfo.HasSnapshot(name))
            {
                return -Errno.EEXIST;
            }

            fsInfo.SubvolSem.DownRead();
            try
            {
                return CreateSnapshot(root, name);
            }
            finally
            {
                fsInfo.SubvolSem.UpRead();
            }
        }
        finally
        {
            fsInfo.TopDirMutex.Unlock();
        }
    }

    // create_snapshot() (inlined into btrfs_mksubvol: no frame of its own).
    private static int CreateSnapshot(BtrfsRoot root, string name)
    {
        BtrfsFsInfo fsInfo = root.FsInfo;
        Inode.BtrfsStartDelallocInodes(root);
        OrderedData.BtrfsWaitOrderedExtents(root, -1);
        // The pending snapshot: a copy of every file's items as of now, taking extent references.
        var items = new Dictionary<long, (long, FileExtentItem[])>();
        foreach (BtrfsInode inode in root.Inodes())
        {
            items[inode.Ino] = (inode.ISize, inode.FileExtents.CloneForSnapshot(fsInfo.ExtentRoot));
        }

        BtrfsTransaction trans = Transaction.BtrfsJoinTransaction(fsInfo);
        fsInfo.AddSnapshot(name, items);
        Transaction.BtrfsEndTransaction(trans);
        return Transaction.BtrfsCommitTransaction(fsInfo);
    }
}
