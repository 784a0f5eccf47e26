// fs/btrfs/extent_io.c (v4.4) io tree: lock_extent_bits' incremental hold-and-wait, try_lock_extent's roll back,
// the held-lock records of locked ranges, delalloc range search.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class ExtentIoTreeTests : BtrfsTestBase
{
    [Test]
    public void LockExtentBits_WhenMiddleIsLocked_HoldsLeadingPartWhileWaiting()
    {
        var tree = new ExtentIoTree(257);
        var holderLocked = new ManualResetEventSlim();
        var holderRelease = new ManualResetEventSlim();
        EmuTask holder = Run("holder", () =>
        {
            tree.LockExtent(4096, 8191);
            holderLocked.Set();
            WaitUntil(() => holderRelease.IsSet, "released");
            tree.UnlockExtent(4096, 8191);
        });
        WaitUntil(() => holderLocked.IsSet, "holder locked [4096, 8191]");
        EmuTask waiter = Run("waiter", () =>
        {
            tree.LockExtentBits(0, 12287);
            tree.UnlockExtent(0, 12287);
        });
        WaitUntil(() => waiter.State == TaskState.Uninterruptible, "the waiter sleeps");

        ExtentStateInfo[] states = tree.Snapshot();
        Assert.That(states[0], Is.EqualTo(new ExtentStateInfo(0, 4095, ExtentBits.Locked, waiter)), "[0, 4095] stays held while waiting");
        Assert.That(states[1], Is.EqualTo(new ExtentStateInfo(4096, 8191, ExtentBits.Locked, holder)));
        Assert.That(states, Has.Length.EqualTo(2), "nothing after the failed start is locked yet");
        Assert.That(waiter.WaitingOn?.Describe(), Is.EqualTo("extent range [4096, 8191] of inode 257"));
        var holders = new List<EmuTask>();
        waiter.WaitingOn!.AppendHolders(holders);
        Assert.That(holders, Is.EqualTo(new[] { holder }));
        Assert.That(HeldLocks.Format(waiter), Does.Contain("(extent range [0, 4095] of inode 257)"));

        holderRelease.Set();
        JoinOk(holder);
        JoinOk(waiter);
        Assert.That(tree.Snapshot(), Is.Empty);
    }

    [Test]
    public void ExtentLockHandOffToIo_LeavesTheRangeLockedButHeldByNoTask()
    {
        // A read bio owns the range btrfs_get_blocks_direct (or __extent_read_full_page) locked once it is sent:
        // btrfs_endio_direct_read unlocks it, whatever the reader does meanwhile, so the reader no longer holds it
        // and a task waiting for it is not waiting for the reader. The rest of a locked state stays the reader's.
        EmuTask reader = EmuTask.Current!;
        var tree = new ExtentIoTree(257);
        tree.LockExtent(0, 12287);

        tree.ExtentLockHandOffToIo(4096, 8191);

        Assert.That(tree.Snapshot(), Is.EqualTo(new[]
        {
            new ExtentStateInfo(0, 4095, ExtentBits.Locked, reader),
            new ExtentStateInfo(4096, 8191, ExtentBits.Locked, null),
            new ExtentStateInfo(8192, 12287, ExtentBits.Locked, reader),
        }));
        Assert.That(HeldLocks.Format(reader), Does.Not.Contain("[4096, 8191]"));
        Assert.That(HeldLocks.Count(reader), Is.EqualTo(2));
        Assert.That(tree.TryLockExtent(4096, 8191), Is.False, "still locked until the completion unlocks it");

        tree.UnlockExtent(0, 12287);
        Assert.That(tree.Snapshot(), Is.Empty);
        Assert.That(HeldLocks.Count(reader), Is.Zero);
    }

    [Test]
    public void TryLockExtent_WhenPartLocked_RollsBackAndReturnsFalse()
    {
        var tree = new ExtentIoTree(257);
        tree.LockExtent(8192, 12287);

        Assert.That(tree.TryLockExtent(0, 16383), Is.False);

        Assert.That(tree.Snapshot(), Is.EqualTo(new[] { new ExtentStateInfo(8192, 12287, ExtentBits.Locked, EmuTask.Current) }));
        tree.UnlockExtent(8192, 12287);
        Assert.That(tree.TryLockExtent(0, 16383), Is.True);
        tree.UnlockExtent(0, 16383);
    }

    [Test]
    public void UnlockExtent_ReleasesTheHeldLockRecordOfTheLocker()
    {
        var tree = new ExtentIoTree(258);
        tree.LockExtent(0, 4095);
        Assert.That(HeldLocks.Format(EmuTask.Current!), Does.Contain("extent range [0, 4095] of inode 258"));

        tree.UnlockExtent(0, 4095);

        Assert.That(HeldLocks.Count(EmuTask.Current!), Is.EqualTo(0));
    }

    [Test]
    public void UnlockExtent_OfPartOfALockedRange_KeepsTheRestLockedAndRecorded()
    {
        var tree = new ExtentIoTree(257);
        tree.LockExtent(0, 8191);

        tree.UnlockExtent(4096, 8191);

        Assert.That(tree.Snapshot(), Is.EqualTo(new[] { new ExtentStateInfo(0, 4095, ExtentBits.Locked, EmuTask.Current) }));
        Assert.That(HeldLocks.Count(EmuTask.Current!), Is.EqualTo(1));
        tree.UnlockExtent(0, 4095);
        Assert.That(HeldLocks.Count(EmuTask.Current!), Is.EqualTo(0));
    }

    [Test]
    public void SetExtentDelalloc_OnAdjacentRanges_MergesThem()
    {
        var tree = new ExtentIoTree(257);
        tree.SetExtentDelalloc(0, 4095);
        tree.SetExtentDelalloc(4096, 8191);

        Assert.That(tree.Snapshot(), Is.EqualTo(new[] { new ExtentStateInfo(0, 8191, ExtentBits.Delalloc | ExtentBits.Uptodate, null) }));
    }

    [Test]
    public void FindDelallocRange_ReturnsTheContiguousRunAndStopsAtAGap()
    {
        var tree = new ExtentIoTree(257);
        tree.SetExtentDelalloc(4096, 8191);
        tree.LockExtent(8192, 12287);
        tree.SetExtentBit(8192, 12287, ExtentBits.Delalloc);
        tree.SetExtentDelalloc(20480, 24575);

        long start = 0;
        int found = tree.FindDelallocRange(ref start, out long end, ExtentIo.BtrfsMaxExtentSize);

        Assert.That((found, start, end), Is.EqualTo((2, 4096L, 12287L)));
        tree.UnlockExtent(8192, 12287);
    }

    [Test]
    public void TestRangeBit_Filled_RequiresEveryByte()
    {
        var tree = new ExtentIoTree(257);
        tree.SetExtentDelalloc(0, 4095);
        tree.SetExtentDelalloc(8192, 12287);

        Assert.That(tree.TestRangeBit(0, 12287, ExtentBits.Delalloc, filled: true), Is.False);
        Assert.That(tree.TestRangeBit(0, 12287, ExtentBits.Delalloc, filled: false), Is.True);
        Assert.That(tree.TestRangeBit(8192, 12287, ExtentBits.Delalloc, filled: true), Is.True);
    }
}
