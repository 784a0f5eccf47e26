// mm/filemap.c behaviour: lock_page/trylock_page/unlock_page on PG_locked, wait_on_page_writeback and
// end_page_writeback on PG_writeback, with Emu's owner tracking.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class PageLockTests : KernelTestBase
{
    private static Page NewPage(long index = 2) => new(mapping: null, inodeNumber: 257, index, address: 0);

    [Test]
    public void LockPage_Uncontended_SetsPgLockedAndRecordsTheOwner()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        Page page = NewPage();

        Filemap.LockPage(page);

        Assert.That(page.Test(PageFlags.Locked), Is.True);
        Assert.That(page.LockOwner, Is.SameAs(self.Task));
        Assert.That(HeldLocks.Snapshot(self.Task).Select(h => h.Lock), Is.EqualTo(new IWaitResource[] { page }));
        Assert.That(self.Task.Nvcsw, Is.Zero);

        Filemap.UnlockPage(page);
        Assert.That(page.Test(PageFlags.Locked), Is.False);
        Assert.That(page.LockOwner, Is.Null);
        Assert.That(HeldLocks.Count(self.Task), Is.Zero);
    }

    [Test]
    public void PageLockHandOffToIo_LockerWaitingForItsOwnReadHoldsNothing()
    {
        // do_generic_file_read: the reader locks the page, submits the read and waits in lock_page until the
        // read's completion unlocks it; the wait must not look like the reader waiting on a page it holds.
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        Page page = NewPage();
        Filemap.LockPage(page);

        Filemap.PageLockHandOffToIo(page);

        Assert.That(page.Test(PageFlags.Locked), Is.True);
        Assert.That(page.LockOwner, Is.Null);
        Assert.That(HeldLocks.Count(self.Task), Is.Zero);
        var holders = new List<EmuTask>();
        page.AppendHolders(holders);
        Assert.That(holders, Is.Empty);
        Filemap.UnlockPage(page);
        Assert.That(page.Test(PageFlags.Locked), Is.False);
    }

    [Test]
    public void TrylockPage_WhenLocked_ReturnsFalse()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        Page page = NewPage();

        Assert.That(Filemap.TrylockPage(page), Is.True);
        Assert.That(Filemap.TrylockPage(page), Is.False);
        Filemap.UnlockPage(page);
    }

    [Test]
    public void LockPage_WhenLocked_BlocksUntilUnlockPageWithTheSeedTrace()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        Page page = NewPage();
        Filemap.LockPage(page);
        var flusher = EmuTask.Run("kworker/u4:1", () =>
        {
            using KFrame frame = KFunc.Enter("extent_write_cache_pages");
            Filemap.LockPage(page);
            Filemap.UnlockPage(page);
        }, parentPid: 2);

        WaitUntilSleeping(flusher);
        Assert.That(flusher.State, Is.EqualTo(TaskState.Uninterruptible));
        Assert.That(flusher.Frames, Is.EqualTo(new[]
        {
            "schedule", "schedule_timeout", "io_schedule_timeout", "bit_wait_io", "__wait_on_bit_lock",
            "__lock_page", "lock_page", "extent_write_cache_pages",
        }));
        Assert.That(flusher.WaitingOn, Is.SameAs(page));
        Assert.That(page.Describe(), Is.EqualTo("page 2 of inode 257"));
        var holders = new List<EmuTask>();
        page.AppendHolders(holders);
        Assert.That(holders, Is.EqualTo(new[] { self.Task }));

        Filemap.UnlockPage(page);
        JoinOk(flusher);
        Assert.That(page.Test(PageFlags.Locked), Is.False);
    }

    [Test]
    public void UnlockPage_FromAnotherTask_DropsTheOwnersHeldLock()
    {
        Page page = NewPage();
        var unlocked = new Completion("unlocked");
        var reader = EmuTask.Run("fdm-stress", () =>
        {
            Filemap.LockPage(page);
            unlocked.WaitForCompletion();
        });
        WaitUntilSleeping(reader);
        Assert.That(HeldLocks.Count(reader), Is.EqualTo(1));

        var endio = EmuTask.Run("irq/endio", () =>
        {
            using IrqScope irq = EmuTask.CurrentOrThrow.EnterIrq();
            Filemap.UnlockPage(page);
        });
        JoinOk(endio);

        Assert.That(HeldLocks.Count(reader), Is.Zero);
        Assert.That(page.LockOwner, Is.Null);
        unlocked.Complete();
        JoinOk(reader);
    }

    [Test]
    public void LockPage_ManyContenders_EachGetsTheLockInTurn()
    {
        const int Tasks = 4;
        const int Iterations = 2_000;
        Page page = NewPage();
        var counter = new int[1];
        var inside = new int[1];
        var overlaps = new int[1];
        var tasks = new EmuTask[Tasks];
        var start = new Completion("start");
        for (int t = 0; t < Tasks; t++)
        {
            tasks[t] = EmuTask.Run($"locker-{t}", () =>
            {
                start.WaitForCompletion();
                for (int i = 0; i < Iterations; i++)
                {
                    Filemap.LockPage(page);
                    if (Interlocked.Increment(ref inside[0]) != 1)
                    {
                        Interlocked.Increment(ref overlaps[0]);
                    }

                    int v = counter[0];
                    Thread.SpinWait(50);
                    counter[0] = v + 1;
                    Interlocked.Decrement(ref inside[0]);
                    Filemap.UnlockPage(page);
                }
            });
        }

        foreach (EmuTask task in tasks)
        {
            WaitUntilSleeping(task);
        }

        start.CompleteAll();
        foreach (EmuTask task in tasks)
        {
            JoinOk(task);
        }

        Assert.That(overlaps[0], Is.Zero, "two tasks inside the critical section");
        Assert.That(counter[0], Is.EqualTo(Tasks * Iterations));
        Assert.That(page.Flags, Is.EqualTo(PageFlags.None));
    }

    [Test]
    public void WaitOnPageWriteback_BlocksUntilEndPageWriteback()
    {
        Page page = NewPage();
        Filemap.SetPageWriteback(page);
        var writer = EmuTask.Run("fdm-stress", () =>
        {
            using KFrame frame = KFunc.Enter("prepare_pages");
            Filemap.WaitOnPageWriteback(page);
        });

        WaitUntilSleeping(writer);
        Assert.That(writer.WaitingOn, Is.SameAs(page.WritebackWait));
        Assert.That(writer.WaitingOn!.Describe(), Is.EqualTo("writeback of page 2 of inode 257"));
        Assert.That(writer.Frames.Skip(3), Is.EqualTo(new[] { "bit_wait_io", "__wait_on_bit", "wait_on_page_bit", "prepare_pages" }));

        Filemap.EndPageWriteback(page);
        JoinOk(writer);
        Assert.That(page.Test(PageFlags.Writeback), Is.False);
    }

    [Test]
    public void WaitOnPageWriteback_NotUnderWriteback_ReturnsAtOnce()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");

        Filemap.WaitOnPageWriteback(NewPage());

        Assert.That(self.Task.Nvcsw, Is.Zero);
    }

    [Test]
    public void EndPageWriteback_NotUnderWriteback_ReportsABug()
    {
        long bugsBefore = Klog.BugsReported;

        Filemap.EndPageWriteback(NewPage());

        Assert.That(Log.Lines[0], Is.EqualTo("BUG: end_page_writeback of page 2 of inode 257 not under writeback"));
        Assert.That(Klog.BugsReported, Is.EqualTo(bugsBefore + 1));
    }

    [Test]
    public void PageFlagHelpers_SetTestAndClearAtomically()
    {
        Page page = NewPage();

        Assert.That(page.TestAndSet(PageFlags.Dirty), Is.False);
        Assert.That(page.TestAndSet(PageFlags.Dirty), Is.True);
        page.Set(PageFlags.Uptodate | PageFlags.Private);
        Assert.That(page.Test(PageFlags.Dirty | PageFlags.Uptodate), Is.True);
        Assert.That(page.TestAndClear(PageFlags.Dirty), Is.True);
        page.Clear(PageFlags.Private);
        Assert.That(page.Flags, Is.EqualTo(PageFlags.Uptodate));
    }
}
