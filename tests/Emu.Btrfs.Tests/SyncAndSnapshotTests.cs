// fs/btrfs/super.c btrfs_sync_fs, fs/btrfs/ordered-data.c btrfs_wait_ordered_roots / btrfs_wait_ordered_extents
// and fs/btrfs/ioctl.c btrfs_mksubvol / create_snapshot (v4.4): sync(2) and snapshot creation wait for every
// ordered extent through the flush_delalloc workqueue.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class SyncAndSnapshotTests : BtrfsTestBase
{
    [Test]
    public void Sync_WaitsForEveryOrderedExtentThroughTheFlushDelallocWorker()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile direct = Fs.Open(inode, OpenFlags.Direct);
        PauseGate gate = PauseAtPlain(SchedPoint.LockExtent, () => EmuTask.Current!.Frames.Contains("btrfs_finish_ordered_io"));
        WriteOk(direct, Pattern(2 * 4096, 1), 0);
        gate.WaitReached();
        BtrfsOrderedExtent ordered = inode.OrderedTree.Snapshot().Single();

        EmuTask sync = Run("sync", Fs.Sync);
        WaitUntil(() => sync.WaitingOn == ordered.Completion, "sync waits for the flush work of the ordered extent");

        Assert.That(sync.Frames, Does.Contain("btrfs_wait_ordered_extents").And.Contain("btrfs_wait_ordered_roots")
            .And.Contain("btrfs_sync_fs").And.Contain("sync_fs_one_sb").And.Contain("iterate_supers").And.Contain("sys_sync"));
        Assert.That(HeldLocks.Format(sync), Does.Contain("(&fs_info->ordered_operations_mutex)").And.Contain("(&root->ordered_extent_mutex)")
            .And.Contain("(&type->s_umount_key)"));
        WaitUntil(() => ordered.Completion.ExpectedCompleter is not null, "the flush worker names itself as the completer");
        EmuTask flushWorker = ordered.Completion.ExpectedCompleter!;
        WaitUntil(() => flushWorker.WaitingOn == ordered, "the flush worker waits for the ordered extent");
        Assert.That(flushWorker.Frames, Does.Contain("btrfs_run_ordered_extent_work").And.Contain("btrfs_flush_delalloc_helper"));
        Assert.That(ordered.TestFlag(OrderedFlag.Complete), Is.False);

        gate.Release();
        JoinOk(sync);
        Assert.That(ordered.TestFlag(OrderedFlag.Complete), Is.True, "sync returned only after the ordered extent finished");
    }

    [Test]
    public void CreateSnapshot_FlushesDelallocAndCopiesTheFileExtentItemsWithReferences()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(3 * 4096, 2);
        WriteOk(file, data, 0);

        Assert.That(Fs.CreateSnapshot("snap"), Is.EqualTo(0));

        BtrfsRoot snap = Fs.FsInfo.Snapshots().Single();
        Assert.That(snap.Name, Is.EqualTo("snap"));
        Assert.That(snap.TryGetSnapshotInode(inode.Ino, out long iSize, out FileExtentItem[] items), Is.True);
        Assert.That(iSize, Is.EqualTo(data.Length));
        Assert.That(items, Is.EqualTo(inode.FileExtents.Snapshot()), "delalloc was flushed and its ordered extents waited for");
        long bytenr = items.Single().DiskBytenr;
        Assert.That(Fs.FsInfo.ExtentRoot.RefsOf(bytenr), Is.EqualTo(2));
        Assert.That(Fs.FsInfo.Generation, Is.GreaterThan(0), "the snapshot was committed");

        WriteOk(file, Pattern(3 * 4096, 3), 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));
        Assert.That(Fs.FsInfo.ExtentRoot.RefsOf(bytenr), Is.EqualTo(1), "the snapshot keeps the old extent");
        Assert.That(Fs.FsInfo.ExtentRoot.IsFree(bytenr, 4096), Is.False);
        Assert.That(Fs.CreateSnapshot("snap"), Is.EqualTo(-Errno.EEXIST));
    }

    [Test]
    public void Mount_WithoutFormat_RequiresTheSuperblockEmuWroteAndKeepsItsGeneration()
    {
        Mount();
        VfsFile file = Fs.Open(Fs.CreateFile());
        WriteOk(file, Pattern(4096, 4), 0);
        Fs.Sync();
        long generation = Fs.FsInfo.Generation;
        Fs.Unmount();

        Assert.That(DiskIo.BtrfsReadDevSuper(Disk, new Zone(64), out long onDisk), Is.True);
        Assert.That(onDisk, Is.EqualTo(generation));
        Engine.Data(0x40, 1)[0] ^= 0xff;
        Assert.That(() => BtrfsFs.Mount(Disk, new BtrfsMountOptions { Format = false }), Throws.TypeOf<InvalidDataException>());
    }
}
