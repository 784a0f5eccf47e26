// The "Emu.Btrfs" meter: a buffered write leaves dirty pages (NR_FILE_DIRTY) that writeback turns into written
// pages (NR_WRITTEN), each system call is counted once, and a range held by lock_extent_bits is counted while
// it is held.
using Emu.Kernel;
using Emu.Testing;
using NUnit.Framework;

namespace Emu.Btrfs.Tests.Metrics;

public sealed class BtrfsMetricsTests : BtrfsTestBase
{
    [Test]
    public void BufferedWrite_LeavesDirtyPagesUntilWriteback_AndEachCallIsCounted()
    {
        using var probe = new MeterProbe(BtrfsMetrics.MeterName);
        Mount();
        string disk = Disk.DiskName;
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        long dirtyBefore = probe.Observe("emu.btrfs.dirty_pages", "disk", disk);
        long writtenBefore = probe.Observe("emu.btrfs.pages_written", "disk", disk);

        WriteOk(file, Pattern(3 * 4096, seed: 1), 0);
        long dirty = probe.Observe("emu.btrfs.dirty_pages", "disk", disk);
        long delalloc = probe.Observe("emu.btrfs.delalloc_bytes", "disk", disk);
        DropCache(inode);
        ReadAll(Fs.Open(inode, OpenFlags.Direct), 2 * 4096, 0, direct: true);

        Assert.That(dirty, Is.EqualTo(dirtyBefore + 3));
        Assert.That(delalloc, Is.EqualTo(3 * 4096));
        Assert.That(probe.Observe("emu.btrfs.dirty_pages", "disk", disk), Is.EqualTo(dirtyBefore));
        Assert.That(probe.Observe("emu.btrfs.writeback_pages", "disk", disk), Is.Zero);
        Assert.That(probe.Observe("emu.btrfs.ordered_extents", "disk", disk), Is.Zero, "writeback finished every ordered extent");
        Assert.That(probe.Observe("emu.btrfs.pages_written", "disk", disk), Is.GreaterThanOrEqualTo(writtenBefore + 3));
        Assert.That(probe.Recorded("emu.btrfs.buffered_writes", "disk", disk), Is.EqualTo(1));
        Assert.That(probe.Recorded("emu.btrfs.direct_io", "op", "read"), Is.EqualTo(1));
    }

    [Test]
    public void LockedExtentRange_IsCountedWhileHeld()
    {
        using var probe = new MeterProbe(BtrfsMetrics.MeterName);
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        long before = probe.Observe("emu.btrfs.locked_extent_ranges", "disk", Disk.DiskName);

        inode.IoTree.LockExtent(0, 4095);
        long held = probe.Observe("emu.btrfs.locked_extent_ranges", "disk", Disk.DiskName);
        inode.IoTree.UnlockExtent(0, 4095);

        Assert.That(held, Is.EqualTo(before + 1));
        Assert.That(probe.Observe("emu.btrfs.locked_extent_ranges", "disk", Disk.DiskName), Is.EqualTo(before));
    }
}
