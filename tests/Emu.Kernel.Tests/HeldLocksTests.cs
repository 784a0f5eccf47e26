// kernel/locking/lockdep.c behaviour: held-lock recording and the lockdep_print_held_locks() listing.
using System.Collections.Concurrent;
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class HeldLocksTests : KernelTestBase
{
    [Test]
    public void Format_NoLocks_PrintsNoLocksHeld()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");

        Assert.That(HeldLocks.Format(self.Task), Is.EqualTo($"no locks held by fdm-stress/{self.Task.Pid}."));
    }

    [Test]
    public void Format_MatchesLockdepShapeWithClassUsageAndAcquiringFunction()
    {
        // The seed's snapshot task (fdm-stress:26849): subvol_sem read-held, then root->ordered_extent_mutex.
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var subvolSem = new RwSemaphore("&fs_info->subvol_sem#held-test");
        var orderedMutex = new KMutex("&root->ordered_extent_mutex#held-test");
        Page page = new(null, 257, 1, 0);

        subvolSem.DownWrite();
        subvolSem.UpWrite();
        using (KFunc.Enter("btrfs_mksubvol"))
        {
            subvolSem.DownRead();
        }

        using (KFunc.Enter("btrfs_wait_ordered_extents"))
        {
            orderedMutex.Lock();
        }

        using (KFunc.Enter("extent_write_cache_pages"))
        {
            Filemap.LockPage(page);
        }

        int pid = self.Task.Pid;
        Assert.That(HeldLocks.Format(self.Task), Is.EqualTo(
            $"3 locks held by fdm-stress/{pid}:\n" +
            " #0:  (&fs_info->subvol_sem#held-test){++++..}, at: btrfs_mksubvol\n" +
            " #1:  (&root->ordered_extent_mutex#held-test){+.+...}, at: btrfs_wait_ordered_extents\n" +
            " #2:  (page 1 of inode 257){+.+...}, at: extent_write_cache_pages"));

        Filemap.UnlockPage(page);
        orderedMutex.Unlock();
        subvolSem.UpRead();
        Assert.That(HeldLocks.Count(self.Task), Is.Zero);
    }

    [Test]
    public void Format_OneLock_UsesTheSingular()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var mutex = new KMutex("&f->f_pos_lock#held-test");
        mutex.Lock();

        Assert.That(HeldLocks.Format(self.Task), Does.StartWith($"1 lock held by fdm-stress/{self.Task.Pid}:\n #0:  "));
        mutex.Unlock();
    }

    [Test]
    public void Acquired_ForPseudoLocks_RecordsTheGivenClassAndFunction()
    {
        // How the workqueue records its lockdep maps around a work function (process_one_work).
        using AdoptedTask self = EmuTask.Adopt("kworker/u4:1");
        LockClass wqClass = LockClass.Get("\"btrfs-flush_delalloc\"#held-test");
        var wqMap = new NamedWaitResource("btrfs-flush_delalloc");

        HeldLocks.Acquired(self.Task, wqMap, wqClass, read: false, at: "process_one_work");

        Assert.That(HeldLocks.Format(self.Task), Does.EndWith(" #0:  (\"btrfs-flush_delalloc\"#held-test){+.+...}, at: process_one_work"));
        Assert.That(HeldLocks.Released(self.Task, wqMap), Is.True);
        Assert.That(HeldLocks.Released(self.Task, wqMap), Is.False);
    }

    [Test]
    public void LockClassUsage_ReclaimFsAndIrqUse_FollowLockdepCharacters()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var iMutex = new KMutex("&sb->s_type->i_mutex_key#held-test");
        iMutex.Class.ReclaimFs = true;
        iMutex.Lock();
        iMutex.Unlock();
        Assert.That(iMutex.Class.Usage, Is.EqualTo("{+.+.+.}"));

        var irqMutex = new KMutex("&test->irq_mutex#held-test");
        using (self.Task.EnterIrq())
        {
            irqMutex.Lock();
            irqMutex.Unlock();
        }

        Assert.That(irqMutex.Class.Usage, Is.EqualTo("{-.....}"));
        irqMutex.Lock();
        irqMutex.Unlock();
        Assert.That(irqMutex.Class.Usage, Is.EqualTo("{?.+...}"));
    }

    [Test]
    public void Acquired_OnBehalfOfAnotherTask_IsListedAfterItsOwnLocksAndTheHolderCanReleaseIt()
    {
        // An extent range split while locked gives its locker a second record, added by the splitting task.
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        LockClass rangeClass = LockClass.Get("extent range#held-test");
        var first = new NamedWaitResource("range 0-4095");
        var second = new NamedWaitResource("range 4096-8191");
        HeldLocks.Acquired(self.Task, first, rangeClass, at: "lock_extent_bits");

        EmuTask splitter = EmuTask.Run("kworker/u4:2", () => HeldLocks.Acquired(self.Task, second, rangeClass, at: "split_state"));
        JoinOk(splitter);

        HeldLock[] held = HeldLocks.Snapshot(self.Task);
        Assert.That(held.Select(h => h.Lock), Is.EqualTo(new IWaitResource[] { first, second }));
        Assert.That(held.Select(h => h.At), Is.EqualTo(new[] { "lock_extent_bits", "split_state" }));
        Assert.That(HeldLocks.Released(self.Task, second), Is.True);
        Assert.That(HeldLocks.Snapshot(self.Task).Select(h => h.Lock), Is.EqualTo(new IWaitResource[] { first }));
        Assert.That(HeldLocks.Released(self.Task, first), Is.True);
        Assert.That(HeldLocks.Count(self.Task), Is.Zero);
    }

    [Test]
    public void AcquiredAndReleasedOnBehalfOfAnotherTask_LeavesItsListAsItWas()
    {
        // A range split while its locker sleeps, then unlocked by the I/O completion: the locker never sees it.
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        LockClass rangeClass = LockClass.Get("extent range#held-test");
        var own = new NamedWaitResource("range 0-4095");
        var piece = new NamedWaitResource("range 4096-8191");
        HeldLocks.Acquired(self.Task, own, rangeClass, at: "lock_extent_bits");
        bool releasedOnce = false;
        bool releasedTwice = true;

        EmuTask others = EmuTask.Run("kworker/u4:2", () =>
        {
            HeldLocks.Acquired(self.Task, piece, rangeClass, at: "split_state");
            releasedOnce = HeldLocks.Released(self.Task, piece);
            releasedTwice = HeldLocks.Released(self.Task, piece);
        });
        JoinOk(others);

        Assert.That(releasedOnce, Is.True);
        Assert.That(releasedTwice, Is.False);
        Assert.That(HeldLocks.Snapshot(self.Task).Select(h => h.Lock), Is.EqualTo(new IWaitResource[] { own }));
        Assert.That(HeldLocks.Released(self.Task, own), Is.True);
        Assert.That(HeldLocks.Count(self.Task), Is.Zero);
    }

    [Test]
    public void Released_ByAnotherTaskForALockNotHeld_ReturnsFalseAndLeavesTheListAlone()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        LockClass cls = LockClass.Get("&test->not_held#held-test");
        var held = new NamedWaitResource("held");
        var other = new NamedWaitResource("other");
        HeldLocks.Acquired(self.Task, held, cls);
        bool released = true;

        EmuTask stranger = EmuTask.Run("irq/endio", () => released = HeldLocks.Released(self.Task, other));
        JoinOk(stranger);

        Assert.That(released, Is.False);
        Assert.That(HeldLocks.Snapshot(self.Task).Select(h => h.Lock), Is.EqualTo(new IWaitResource[] { held }));
        Assert.That(HeldLocks.Released(self.Task, held), Is.True);
    }

    [Test]
    public void Listings_ReadWhileTheHolderAndACompletionChangeTheList_AreAlwaysStatesTheListPassedThrough()
    {
        // The holder nests two locks per round and locks pages that a completion task unlocks: readers must
        // never see a torn list (the inner lock without the outer one before it, a duplicate, a hole), and
        // every change lands exactly once.
        const int Rounds = 50_000;
        LockClass cls = LockClass.Get("&test->churn#held-test");
        var outer = new NamedWaitResource("outer");
        var inner = new NamedWaitResource("inner");
        var toUnlock = new ConcurrentQueue<IWaitResource>();
        int holderQueued = 0;
        int failedUnlocks = 0;
        int countAtEnd = -1;
        var mayCount = new Completion("may_count");

        EmuTask holder = EmuTask.Run("fdm-stress", () =>
        {
            EmuTask self = EmuTask.CurrentOrThrow;
            for (int i = 0; i < Rounds; i++)
            {
                HeldLocks.Acquired(self, outer, cls, read: true);
                HeldLocks.Acquired(self, inner, cls);
                if (i % 8 == 0)
                {
                    var page = new NamedWaitResource($"page {i / 8}");
                    HeldLocks.Acquired(self, page, cls);
                    toUnlock.Enqueue(page);
                }

                HeldLocks.Released(self, inner);
                HeldLocks.Released(self, outer);
            }

            Volatile.Write(ref holderQueued, 1);
            mayCount.WaitForCompletion();
            countAtEnd = HeldLocks.Count(self);
        });
        EmuTask completion = EmuTask.Run("irq/endio", () =>
        {
            while (Volatile.Read(ref holderQueued) == 0 || !toUnlock.IsEmpty)
            {
                if (!toUnlock.TryDequeue(out IWaitResource? page))
                {
                    Thread.Yield();
                    continue;
                }

                if (!HeldLocks.Released(holder, page))
                {
                    Interlocked.Increment(ref failedUnlocks);
                }
            }
        });

        var torn = new List<string>();
        while (!completion.HasExited && torn.Count == 0)
        {
            HeldLock[] listing = HeldLocks.Snapshot(holder);
            IWaitResource[] locks = listing.Select(h => h.Lock).ToArray();
            int o = Array.IndexOf(locks, outer);
            int n = Array.IndexOf(locks, inner);
            bool whole = locks.All(l => l == outer || l == inner || (l is NamedWaitResource && l.Describe().StartsWith("page ", StringComparison.Ordinal)))
                && locks.Distinct().Count() == locks.Length
                && (n < 0 || (o >= 0 && o < n));
            if (!whole)
            {
                torn.Add(string.Join(", ", listing.Select(h => h.Lock?.Describe() ?? "(null)")));
            }
        }

        JoinOk(completion);
        mayCount.Complete();
        JoinOk(holder);
        Assert.That(torn, Is.Empty);
        Assert.That(failedUnlocks, Is.Zero);
        Assert.That(countAtEnd, Is.Zero);
    }
}
