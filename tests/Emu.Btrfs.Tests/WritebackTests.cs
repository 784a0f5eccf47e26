// fs/btrfs/extent_io.c extent_write_cache_pages / cow_file_range and mm/page-writeback.c tagging (v4.4):
// TOWRITE tagging for WB_SYNC_ALL, an ordered extent created while its other pages stay dirty and unlocked,
// the writer's -EAGAIN retry on an overlapping ordered extent, and the flusher.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class WritebackTests : BtrfsTestBase
{
    [Test]
    public void TagPagesForWriteback_TagsTowriteOnlyThePagesDirtyAtTheTime()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(4096, 1), 0);
        WriteOk(file, Pattern(4096, 2), 2 * 4096);

        PageWriteback.TagPagesForWriteback(inode.Mapping, 0, long.MaxValue);
        WriteOk(file, Pattern(4096, 3), 4 * 4096);

        Assert.That(inode.Mapping.PageTagged(0, PageCacheTag.Towrite), Is.True);
        Assert.That(inode.Mapping.PageTagged(2, PageCacheTag.Towrite), Is.True);
        Assert.That(inode.Mapping.PageTagged(1, PageCacheTag.Towrite), Is.False, "a hole has no page");
        Assert.That(inode.Mapping.PageTagged(4, PageCacheTag.Towrite), Is.False, "dirtied after tagging");
        Assert.That(inode.Mapping.PageTagged(4, PageCacheTag.Dirty), Is.True);
    }

    [Test]
    public void FilemapFdatawriteRange_WritesAndClearsTheTagsOfTheDirtyPages()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(3 * 4096, 4), 0);

        Assert.That(PageCache.FilemapFdatawriteRange(inode.Mapping, 0, long.MaxValue), Is.EqualTo(0));
        Assert.That(PageCache.FilemapFdatawaitRange(inode.Mapping, 0, long.MaxValue), Is.EqualTo(0));

        Assert.That(inode.Mapping.MappingTagged(PageCacheTag.Dirty), Is.False);
        Assert.That(inode.Mapping.MappingTagged(PageCacheTag.Towrite), Is.False);
        Assert.That(inode.Mapping.MappingTagged(PageCacheTag.Writeback), Is.False);
        Assert.That(Fs.Zone.NrFileDirty, Is.EqualTo(0));
    }

    [Test]
    public void CowFileRange_CreatesTheOrderedExtentAndLeavesItsOtherPagesDirtyAndUnlocked()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(3 * 4096, 5), 0);
        PauseGate gate = PauseAt(SchedPoint.WritepagesNextPage, d => d is Page { Index: 1 });
        EmuTask flusher = Run("flusher", () => PageCache.FilemapFlush(inode.Mapping));
        gate.WaitReached();

        BtrfsOrderedExtent[] ordered = inode.OrderedTree.Snapshot();
        Page page1 = PageCache.FindGetPage(inode.Mapping, 1)!;
        Page page2 = PageCache.FindGetPage(inode.Mapping, 2)!;
        PageFlags flags1 = page1.Flags;
        PageFlags flags2 = page2.Flags;
        bool delallocLeft = inode.IoTree.TestRangeBit(0, 3 * 4096 - 1, ExtentBits.Delalloc, filled: false);
        bool rangeLocked = inode.IoTree.TestRangeBit(0, 3 * 4096 - 1, ExtentBits.Locked, filled: false);
        PageCache.PageCacheRelease(page1);
        PageCache.PageCacheRelease(page2);
        gate.Release();
        JoinOk(flusher);

        Assert.That(ordered, Has.Length.EqualTo(1));
        Assert.That((ordered[0].FileOffset, ordered[0].Len), Is.EqualTo((0L, 3L * 4096)));
        Assert.That(ordered[0].TestFlag(OrderedFlag.Direct), Is.False, "a buffered write's ordered extent");
        Assert.That(flags1 & (PageFlags.Dirty | PageFlags.Locked | PageFlags.Private2), Is.EqualTo(PageFlags.Dirty | PageFlags.Private2));
        Assert.That(flags2 & (PageFlags.Dirty | PageFlags.Locked | PageFlags.Private2), Is.EqualTo(PageFlags.Dirty | PageFlags.Private2));
        Assert.That(delallocLeft, Is.False, "cow_file_range cleared the delalloc bits");
        Assert.That(rangeLocked, Is.False, "cow_file_range unlocked the range");
        Assert.That(OrderedData.BtrfsWaitOrderedRange(inode, 0, long.MaxValue), Is.EqualTo(0));
        Assert.That(ordered[0].TestFlag(OrderedFlag.Complete), Is.True);
        Assert.That(inode.FileExtents.Snapshot(), Has.Length.EqualTo(1));
    }

    [Test]
    public void BufferedWrite_WhenAnOrderedExtentOverlaps_DropsThePagesWaitsForItAndRetries()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        WriteOk(file, Pattern(2 * 4096, 6), 0);
        DropCache(inode);
        WriteOk(file, Pattern(2 * 4096, 7), 0);
        PauseGate gate = PauseAt(SchedPoint.WritepagesNextPage, d => d is Page { Index: 1 });
        EmuTask flusher = Run("flusher", () => PageCache.FilemapFlush(inode.Mapping));
        gate.WaitReached();
        BtrfsOrderedExtent ordered = inode.OrderedTree.Snapshot().Single();
        int lockRangeAttempts = 0;
        Sched.SetPointHook(p =>
        {
            if (p == SchedPoint.BufferedWriteLockRange)
            {
                Interlocked.Increment(ref lockRangeAttempts);
            }
        });
        byte[] patch = Pattern(4096, 8);

        EmuTask writer = Run("writer", () => WriteOk(file, patch, 4096));
        // The writer wrote the ordered extent's second page itself (btrfs_start_ordered_extent); the first
        // page's bio is still being built by the paused flusher, so the writer waits for the extent.
        WaitUntil(() => writer.WaitingOn == ordered, "the writer waits for the ordered extent");
        Assert.That(HeldLocks.Count(writer), Is.EqualTo(2), "only sb_writers and i_mutex: pages and range were dropped");
        gate.Release();
        JoinOk(flusher);
        JoinOk(writer);

        Assert.That(lockRangeAttempts, Is.EqualTo(2), "first attempt met the ordered extent (-EAGAIN), the retry did not");
        Assert.That(ordered.TestFlag(OrderedFlag.Complete), Is.True);
        byte[] expected = Pattern(2 * 4096, 7);
        patch.CopyTo(expected, 4096);
        DropCache(inode);
        Assert.That(ReadAll(file, 2 * 4096, 0), Is.EqualTo(expected));
    }

    [Test]
    public void Flusher_WritesDirtyDataBackOnItsOwnAfterTheExpireInterval()
    {
        Mount(dirtyWritebackCentisecs: 1);
        Fs.Wb.DirtyExpireCentisecs = 1;
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);

        WriteOk(file, Pattern(4 * 4096, 9), 0);

        WaitUntil(() => inode.FileExtents.Snapshot().Length != 0, "wb_workfn's periodic pass wrote the file");
        Assert.That(inode.DelallocBytes, Is.EqualTo(0));
    }
}
