// The ade770294df2 scenario (kernel-paths.md "Deadlock walk-through"): delalloc range [4K, 12K) gets ordered
// extent OE1 from a writeback pass that wrote only page 1 (page 2 still dirty); a DIO read of [0, 12K) has
// mapped block 0 and keeps [0, 4K) locked; a buffered write of [0, 12K) holds pages 0-2 and waits for [0, 4K);
// then the DIO read maps block 1 and meets OE1. v4.4's lock_extent_direct waits for OE1, whose writeback needs
// page 2: a deadlock. v4.6's returns -ENOTBLK and the read finishes through the page cache.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class DioReadDeadlockScenarioTests : BtrfsTestBase
{
    private static readonly string[] s_dioReaderTrace =
    [
        "lock_page", "extent_write_cache_pages", "extent_writepages", "btrfs_writepages", "do_writepages",
        "__filemap_fdatawrite_range", "filemap_fdatawrite_range", "btrfs_start_ordered_extent", "btrfs_get_blocks_direct",
        "do_blockdev_direct_IO", "__blockdev_direct_IO", "btrfs_direct_IO", "generic_file_read_iter", "__vfs_read", "vfs_read",
    ];

    private static readonly string[] s_writerTrace =
    [
        "lock_extent_bits", "lock_and_cleanup_extent_if_need", "__btrfs_buffered_write", "btrfs_file_write_iter", "__vfs_write", "vfs_write",
    ];

    [Test]
    public void DioRead_Unpatched_DeadlocksWithBufferedWriteAndFlusher()
    {
        Mount(BtrfsMode.Unpatched);
        using var detector = new DeadlockDetector();
        Scenario s = Setup();
        detector.Install();

        s.DioGate.Release();
        WaitUntil(() => detector.DeadlocksDetected > 0, "the wait-for graph closes");
        EmuTask flusher = Run("kworker/u4:9", () => PageCache.FilemapFlush(s.Inode.Mapping));
        WaitUntil(() => flusher.WaitingOn is Page { Index: 2 }, "the flusher blocks behind the cycle on page 2");

        DeadlockReport report = detector.Reports[0];
        Assert.That(report.Tasks, Is.EquivalentTo(new[] { s.DioReader, s.Writer }));
        Assert.That(s.DioReader.WaitingOn, Is.InstanceOf<Page>().With.Property(nameof(Page.Index)).EqualTo(2L));
        Assert.That(s.DioReader.WaitingOn!.Describe(), Is.EqualTo("page 2 of inode 257"));
        Assert.That(s.Writer.WaitingOn!.Describe(), Is.EqualTo("extent range [0, 4095] of inode 257"));
        Assert.That(((Page)s.DioReader.WaitingOn).LockOwner, Is.EqualTo(s.Writer));
        Assert.That(HeldLocks.Format(s.DioReader), Does.Contain("(extent range [0, 4095] of inode 257)"));
        Assert.That(s.DioReader.Frames, Is.SupersetOf(s_dioReaderTrace));
        AssertInOrder(s.DioReader.Frames, s_dioReaderTrace);
        AssertInOrder(s.Writer.Frames, s_writerTrace);
        Assert.That(s.Ordered.TestFlag(OrderedFlag.Complete), Is.False);

        // Break the cycle so the test can clean up: drop the DIO reader's lock on [0, 4K) behind its back.
        s.Inode.IoTree.UnlockExtent(0, 4095);
        JoinOk(s.Writer);
        JoinOk(s.DioReader);
        JoinOk(flusher);
    }

    [Test]
    public void DioRead_Patched_FallsBackToBufferedRead()
    {
        Mount(BtrfsMode.Patched);
        using var detector = new DeadlockDetector();
        Scenario s = Setup();
        detector.Install();

        s.DioGate.Release();
        JoinOk(s.Writer);
        JoinOk(s.DioReader);

        Assert.That(detector.DeadlocksDetected, Is.EqualTo(0));
        Assert.That(s.ReadResult, Is.EqualTo(3 * 4096), "4 KiB by direct IO, the rest through the page cache");
        Assert.That(s.BlocksMapped, Is.EqualTo(1), "only block 0 was read directly");
        Assert.That(s.ReadBuffer.AsSpan(0, 4096).ToArray(), Is.EqualTo(s.Old.AsSpan(0, 4096).ToArray()), "block 0 from disk, before the writer got its range");
        for (int block = 1; block < 3; block++)
        {
            byte[] got = s.ReadBuffer.AsSpan(block * 4096, 4096).ToArray();
            Assert.That(got, Is.EqualTo(s.First.AsSpan(block * 4096, 4096).ToArray()).Or.EqualTo(s.Second.AsSpan(block * 4096, 4096).ToArray()),
                $"block {block} is one of the two writes");
        }

        Assert.That(s.Ordered.TestFlag(OrderedFlag.Complete), Is.True);
        DropCache(s.Inode);
        Assert.That(ReadAll(Fs.Open(s.Inode), 3 * 4096, 0), Is.EqualTo(s.Second));
    }

    // The seed diagram's order: the DIO read starts on clean pages (its filemap_write_and_wait_range has nothing
    // to do), maps block 0 and is paused with [0, 4K) locked; a buffered write dirties [4K, 12K); a writeback
    // pass over page 1 only runs delalloc for the whole run, creating OE1 = [4K, 12K) and leaving page 2 dirty;
    // a second buffered write of [0, 12K) takes pages 0-2 and sleeps on [0, 4K).
    private Scenario Setup()
    {
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] old = Pattern(3 * 4096, 1);
        WriteOk(file, old, 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));
        var s = new Scenario { Inode = inode, Old = old, Second = Pattern(3 * 4096, 3), ReadBuffer = new byte[3 * 4096] };
        s.DioGate = PauseAt(SchedPoint.DioBlockMapped, d => d is DioMappedRange { Start: 0 });
        Sched.SetPointHook(p =>
        {
            if (p == SchedPoint.DioBlockMapped)
            {
                Interlocked.Increment(ref s.BlocksMapped);
            }
        });
        VfsFile reader = Fs.Open(inode, OpenFlags.Direct);
        s.DioReader = Run("fdm-stress", () => s.ReadResult = Fs.VfsRead(reader, s.ReadBuffer, 0));
        s.DioGate.WaitReached();

        s.First = (byte[])old.Clone();
        Pattern(2 * 4096, 2).CopyTo(s.First, 4096);
        WriteOk(file, s.First.AsSpan(4096).ToArray(), 4096);
        EmuTask pass = Run("kworker/u4:8", () => PageCache.FilemapFdatawriteRange(inode.Mapping, 4096, 8191));
        JoinOk(pass);
        s.Ordered = inode.OrderedTree.Snapshot().Single();
        Assert.That((s.Ordered.FileOffset, s.Ordered.Len), Is.EqualTo((4096L, 2L * 4096)));
        Page page2 = PageCache.FindGetPage(inode.Mapping, 2)!;
        Assert.That(page2.Test(PageFlags.Dirty) && !page2.Test(PageFlags.Locked), Is.True, "page 2 is dirty and unlocked under OE1");
        PageCache.PageCacheRelease(page2);

        s.Writer = Run("fdm-stress", () => WriteOk(file, s.Second, 0));
        WaitUntil(() => s.Writer.WaitingOn?.Describe() == "extent range [0, 4095] of inode 257", "the writer waits for [0, 4K)");
        Assert.That(HeldLocks.Format(s.Writer), Does.Contain("(page 0 of inode 257)").And.Contain("(page 1 of inode 257)").And.Contain("(page 2 of inode 257)"));
        return s;
    }

    private sealed class Scenario
    {
        public BtrfsInode Inode = null!;
        public BtrfsOrderedExtent Ordered = null!;
        public byte[] Old = null!;
        public byte[] First = null!;
        public byte[] Second = null!;
        public byte[] ReadBuffer = null!;
        public PauseGate DioGate = null!;
        public EmuTask DioReader = null!;
        public EmuTask Writer = null!;
        public long ReadResult;
        public int BlocksMapped;
    }
}
