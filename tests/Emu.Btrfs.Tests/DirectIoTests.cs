// fs/btrfs/inode.c btrfs_direct_IO / btrfs_get_blocks_direct / btrfs_endio_direct_read and fs/direct-io.c
// (v4.4): DIO reads keep each mapped range locked until their bio completes, unaligned DIO falls back to the
// page cache, DIO writes go through DIRECT ordered extents, and buffered reads wait for ordered extents.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class DirectIoTests : BtrfsTestBase
{
    [Test]
    public void DioRead_KeepsEachMappedBlockLockedUntilEndioUnlocksIt()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(3 * 4096, 1);
        WriteOk(file, data, 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));
        var lockedWhenMapped = new List<ExtentStateInfo[]>();
        Sched.SetPointDetailHook((p, d) =>
        {
            if (p == SchedPoint.DioBlockMapped)
            {
                lockedWhenMapped.Add(inode.IoTree.Snapshot().Where(s => (s.Bits & ExtentBits.Locked) != 0).ToArray());
            }
        });

        byte[] read = ReadAll(file, 3 * 4096, 0, direct: true);

        Assert.That(read, Is.EqualTo(data));
        Assert.That(lockedWhenMapped, Has.Count.EqualTo(3), "one btrfs_get_blocks_direct call per 4 KiB block");
        Assert.That(lockedWhenMapped[2].Select(s => (s.Start, s.End)), Is.EqualTo(new[] { (0L, 4095L), (4096L, 8191L), (8192L, 12287L) }),
            "blocks 0 and 1 are still locked (their bio unsubmitted) while block 2 is mapped");
        Assert.That(inode.IoTree.Snapshot().Where(s => (s.Bits & ExtentBits.Locked) != 0), Is.Empty, "btrfs_endio_direct_read unlocked them");
        Assert.That(HeldLocks.Count(EmuTask.Current!), Is.EqualTo(0));
    }

    [Test]
    public void DioRead_Unaligned_FallsBackToTheBufferedPath()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(2 * 4096, 2);
        WriteOk(file, data, 0);
        int mapped = 0;
        Sched.SetPointDetailHook((p, _) =>
        {
            if (p == SchedPoint.DioBlockMapped)
            {
                mapped++;
            }
        });

        byte[] read = ReadAll(file, 1000, 100, direct: true);

        Assert.That(read, Is.EqualTo(data.AsSpan(100, 1000).ToArray()));
        Assert.That(mapped, Is.EqualTo(0), "check_direct_IO refused it: no block was mapped for direct IO");
    }

    [Test]
    public void DioRead_OfUnwrittenDirtyData_SeesItAfterTheWritebackGenericFileReadIterStarts()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(4096, 3);
        WriteOk(file, data, 0);

        Assert.That(ReadAll(file, 4096, 0, direct: true), Is.EqualTo(data));
    }

    [Test]
    public void DioRead_PastEof_ReturnsOnlyTheBytesBeforeEof()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(4096 + 100, 4);
        WriteOk(file, data, 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));

        var buf = new byte[3 * 4096];
        long n = Fs.VfsRead(file, buf, 0, direct: true);

        Assert.That(n, Is.EqualTo(data.Length));
        Assert.That(buf.AsSpan(0, data.Length).ToArray(), Is.EqualTo(data));
    }

    [Test]
    public void DioWrite_CreatesADirectOrderedExtentAndReadsBack()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode, OpenFlags.Direct);
        byte[] data = Pattern(4 * 4096, 5);
        BtrfsOrderedExtent? ordered = null;
        Sched.SetPointHook(p =>
        {
            if (p == SchedPoint.OrderedExtent && ordered is null)
            {
                ordered = inode.OrderedTree.Snapshot().FirstOrDefault();
            }
        });

        WriteOk(file, data, 0);
        Assert.That(OrderedData.BtrfsWaitOrderedRange(inode, 0, long.MaxValue), Is.EqualTo(0));

        Assert.That(ordered, Is.Not.Null);
        Assert.That(ordered!.TestFlag(OrderedFlag.Direct), Is.True);
        Assert.That(inode.Mapping.NrPagesCount, Is.EqualTo(0), "direct IO bypassed the page cache");
        Assert.That(inode.ISize, Is.EqualTo(data.Length));
        Assert.That(ReadAll(file, data.Length, 0, direct: true), Is.EqualTo(data));
        Assert.That(ReadAll(file, data.Length, 0, direct: false), Is.EqualTo(data));
    }

    [Test]
    public void BufferedRead_OfARangeUnderAnOrderedExtent_WaitsForTheOrderedExtent()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile direct = Fs.Open(inode, OpenFlags.Direct);
        VfsFile buffered = Fs.Open(inode);
        byte[] data = Pattern(2 * 4096, 6);
        // Hold btrfs_finish_ordered_io of the DIO write's ordered extent before it locks the range.
        PauseGate gate = PauseAtPlain(SchedPoint.LockExtent, () => EmuTask.Current!.Frames.Contains("btrfs_finish_ordered_io"));
        WriteOk(direct, data, 0);
        gate.WaitReached();
        BtrfsOrderedExtent ordered = inode.OrderedTree.Snapshot().Single();
        var buf = new byte[4096];
        long n = 0;

        EmuTask reader = Run("reader", () => n = Fs.VfsRead(buffered, buf, 4096));
        WaitUntil(() => reader.WaitingOn == ordered, "readpage waits for the ordered extent");
        Assert.That(HeldLocks.Format(reader), Does.Contain("(page 1 of inode 257)"), "with the page locked and the range unlocked");
        Assert.That(HeldLocks.Format(reader), Does.Not.Contain("extent range"));
        gate.Release();
        JoinOk(reader);

        Assert.That(n, Is.EqualTo(4096));
        Assert.That(buf, Is.EqualTo(data.AsSpan(4096).ToArray()));
        Assert.That(ordered.TestFlag(OrderedFlag.Complete), Is.True);
    }
}
