// fs/btrfs/inode.c cow_file_range / btrfs_finish_ordered_io and fs/btrfs/file-item.c (v4.4): rewrites go to new
// space and free the old extent when the ordered extent finishes; reads verify crc32c; a write error reaches
// fsync through the ordered extent without a hang.
using Emu.Block;
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class CowAndChecksumTests : BtrfsTestBase
{
    [Test]
    public void Rewrite_GoesToANewExtentAndFreesTheOldOneWhenFinished()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(4096, 1), 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));
        long oldBytenr = inode.FileExtents.Snapshot().Single().DiskBytenr;

        WriteOk(file, Pattern(4096, 2), 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));

        long newBytenr = inode.FileExtents.Snapshot().Single().DiskBytenr;
        Assert.That(newBytenr, Is.Not.EqualTo(oldBytenr));
        Assert.That(Fs.FsInfo.ExtentRoot.RefsOf(oldBytenr), Is.EqualTo(0));
        Assert.That(Fs.FsInfo.ExtentRoot.IsFree(oldBytenr, 4096), Is.True);
        Assert.That(Fs.FsInfo.CsumRoot.LookupCsum(oldBytenr, out _), Is.False, "the old extent's csums went with it");
        DropCache(inode);
        Assert.That(ReadAll(file, 4096, 0), Is.EqualTo(Pattern(4096, 2)));
    }

    [Test]
    public void PartialRewrite_SplitsTheFileExtentItemAndKeepsTheOldExtentReferenced()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(3 * 4096, 3), 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));
        long oldBytenr = inode.FileExtents.Snapshot().Single().DiskBytenr;

        WriteOk(file, Pattern(4096, 4), 4096);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));

        FileExtentItem[] items = inode.FileExtents.Snapshot();
        Assert.That(items.Select(i => (i.FileOffset, i.NumBytes)), Is.EqualTo(new[] { (0L, 4096L), (4096L, 4096L), (8192L, 4096L) }));
        Assert.That(items[0].DiskBytenr, Is.EqualTo(oldBytenr));
        Assert.That(items[2].DiskBytenr, Is.EqualTo(oldBytenr));
        Assert.That(items[2].Offset, Is.EqualTo(8192));
        Assert.That(Fs.FsInfo.ExtentRoot.RefsOf(oldBytenr), Is.EqualTo(2));
        byte[] expected = Pattern(3 * 4096, 3);
        Pattern(4096, 4).CopyTo(expected, 4096);
        DropCache(inode);
        Assert.That(ReadAll(file, 3 * 4096, 0), Is.EqualTo(expected));
    }

    [Test]
    public void BufferedRead_OfACorruptedSector_FailsWithEioAndLogsTheCsumFailure()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(2 * 4096, 5), 0);
        DropCache(inode);
        long bytenr = inode.FileExtents.Snapshot().Single().DiskBytenr;
        Engine.Data(bytenr + 4096 + 10, 1)[0] ^= 0xff;

        var buf = new byte[2 * 4096];
        long n = Fs.VfsRead(file, buf, 0);

        Assert.That(n, Is.EqualTo(4096), "the intact first page reads; the second fails");
        Assert.That(Fs.VfsRead(file, buf, 4096), Is.EqualTo(-5), "-EIO");
        Assert.That(Log.Lines, Has.Some.Match(@"^BTRFS warning \(device emu0\): csum failed ino 257 off 4096 csum 0x[0-9a-f]{8} expected csum 0x[0-9a-f]{8}$"));
    }

    [Test]
    public void DirectRead_OfACorruptedSector_FailsWithEio()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(4096, 6), 0);
        DropCache(inode);
        long bytenr = inode.FileExtents.Snapshot().Single().DiskBytenr;
        Engine.Data(bytenr, 1)[0] ^= 0x01;

        var buf = new byte[4096];
        Assert.That(Fs.VfsRead(file, buf, 0, direct: true), Is.EqualTo(-5));
        Assert.That(Log.Lines, Has.Some.Contains("csum failed ino 257 off 0 "));
        Assert.That(inode.IoTree.Snapshot().Where(s => (s.Bits & ExtentBits.Locked) != 0), Is.Empty, "endio unlocked the range");
    }

    [Test]
    public void WriteError_UnderWriteback_MarksTheOrderedExtentIoerrAndFsyncReturnsEio()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(2 * 4096, 7), 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));
        FileExtentItem before = inode.FileExtents.Snapshot().Single();
        BtrfsOrderedExtent? ordered = null;
        Sched.SetPointDetailHook((p, d) =>
        {
            if (p == SchedPoint.CowOrderedExtentCreated)
            {
                ordered = (BtrfsOrderedExtent)d!;
            }
        });
        Disk.Faults.Configure(new FaultConfig { FailProbability = 1, Ops = FaultOps.Write, FirstSector = DiskIo.DataStart >> Blk.SectorShift });
        WriteOk(file, Pattern(2 * 4096, 8), 0);

        int ret = Fs.Fsync(file);

        Disk.Faults.Configure(null);
        Assert.That(ret, Is.EqualTo(-5), $"-EIO reaches fsync (injected {Disk.Faults.Injected})");
        Assert.That(ordered, Is.Not.Null);
        Assert.That(ordered!.TestFlag(OrderedFlag.Ioerr), Is.True);
        Assert.That(ordered.TestFlag(OrderedFlag.Complete), Is.True, "finished and removed despite the error");
        Assert.That(inode.FileExtents.Snapshot().Single(), Is.EqualTo(before), "the old data stays in place");
        Assert.That(Fs.FsInfo.ExtentRoot.IsFree(ordered.Start, ordered.DiskLen), Is.True, "the new extent was returned");
        Assert.That(Fs.Fsync(file), Is.EqualTo(0), "the error is reported once");
    }
}
