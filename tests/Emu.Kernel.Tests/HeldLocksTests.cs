// kernel/locking/lockdep.c behaviour: held-lock recording and the lockdep_print_held_locks() listing.
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
}
