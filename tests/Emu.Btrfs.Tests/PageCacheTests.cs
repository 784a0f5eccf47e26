// lib/radix-tree.c tags, mm/filemap.c lookups and mm/vmscan.c reclaim with mm/page-writeback.c throttling
// (v4.4): tagged gang lookups skip untagged pages, a full page cache evicts clean pages, and a writer far over
// the dirty limit is throttled until writeback catches up.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class PageCacheTests : BtrfsTestBase
{
    [Test]
    public void RadixTree_GangLookupTag_ReturnsOnlyTaggedItemsInIndexOrder()
    {
        var tree = new RadixTree<string>();
        foreach (long index in new long[] { 0, 3, 64, 65, 4096, 300_000 })
        {
            Assert.That(tree.Insert(index, $"p{index}"), Is.True);
        }

        tree.TagSet(3, PageCacheTag.Dirty);
        tree.TagSet(65, PageCacheTag.Dirty);
        tree.TagSet(300_000, PageCacheTag.Dirty);
        var found = new string[8];

        int n = tree.GangLookup(1, long.MaxValue, PageCacheTag.Dirty, found, out long next);

        Assert.That(found.Take(n), Is.EqualTo(new[] { "p3", "p65", "p300000" }));
        Assert.That(next, Is.EqualTo(300_001));
        Assert.That(tree.Insert(3, "again"), Is.False);
        Assert.That(tree.Delete(65), Is.EqualTo("p65"));
        Assert.That(tree.TagGet(65, PageCacheTag.Dirty), Is.False);
        tree.TagClear(3, PageCacheTag.Dirty);
        tree.TagClear(300_000, PageCacheTag.Dirty);
        Assert.That(tree.Tagged(PageCacheTag.Dirty), Is.False);
        Assert.That(tree.Count, Is.EqualTo(5));
    }

    [Test]
    public void RadixTree_RangeTagIfTagged_CopiesATagOverARange()
    {
        var tree = new RadixTree<string>();
        for (long i = 0; i < 200; i++)
        {
            tree.Insert(i, $"p{i}");
            if (i % 3 == 0)
            {
                tree.TagSet(i, PageCacheTag.Dirty);
            }
        }

        int tagged = tree.RangeTagIfTagged(10, 100, 1000, PageCacheTag.Dirty, PageCacheTag.Towrite, out _);

        Assert.That(tagged, Is.EqualTo(Enumerable.Range(10, 91).Count(i => i % 3 == 0)));
        Assert.That(tree.TagGet(9, PageCacheTag.Towrite), Is.False);
        Assert.That(tree.TagGet(12, PageCacheTag.Towrite), Is.True);
        Assert.That(tree.TagGet(13, PageCacheTag.Towrite), Is.False);
        Assert.That(tree.TagGet(102, PageCacheTag.Towrite), Is.False);
    }

    [Test]
    public void FindOrCreatePage_ReturnsTheSamePageLockedByTheCaller()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();

        Page page = PageCache.FindOrCreatePage(inode.Mapping, 5);
        Assert.That(page.LockOwner, Is.EqualTo(EmuTask.Current));
        Filemap.UnlockPage(page);
        Page again = PageCache.FindOrCreatePage(inode.Mapping, 5);

        Assert.That(again, Is.SameAs(page));
        Assert.That(inode.Mapping.NrPagesCount, Is.EqualTo(1));
        Filemap.UnlockPage(again);
        PageCache.PageCacheRelease(page);
        PageCache.PageCacheRelease(again);
    }

    [Test]
    public void FullPageCache_ReclaimsCleanPagesAndThrottledWritesStillComplete()
    {
        Mount(pageCacheBytes: 64 * 4096);
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(256 * 4096, 7);

        WriteOk(file, data, 0);
        Assert.That(Fs.Fsync(file), Is.EqualTo(0));

        Assert.That(Fs.Zone.NrReclaimed, Is.GreaterThan(0), "writing 4x the cache evicted clean pages");
        Assert.That(inode.Mapping.NrPagesCount, Is.LessThanOrEqualTo(64));
        Assert.That(ReadAll(file, data.Length, 0), Is.EqualTo(data));
        Assert.That(Fs.Zone.NrFileDirty, Is.EqualTo(0));
    }
}
