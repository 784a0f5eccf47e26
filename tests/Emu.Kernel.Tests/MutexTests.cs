// kernel/locking/mutex.c behaviour: mutex_lock, mutex_trylock, mutex_unlock, owner tracking.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class MutexTests : KernelTestBase
{
    [Test]
    public void Lock_Uncontended_RecordsOwnerAndHeldLock()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var mutex = new KMutex("&root->ordered_extent_mutex");

        mutex.Lock();

        Assert.That(mutex.IsLocked, Is.True);
        Assert.That(mutex.Owner, Is.SameAs(self.Task));
        Assert.That(HeldLocks.Snapshot(self.Task).Select(h => h.Lock), Is.EqualTo(new IWaitResource[] { mutex }));

        mutex.Unlock();
        Assert.That(mutex.IsLocked, Is.False);
        Assert.That(mutex.Owner, Is.Null);
        Assert.That(HeldLocks.Count(self.Task), Is.Zero);
    }

    [Test]
    public void Trylock_WhenHeld_ReturnsFalse()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var mutex = new KMutex("&fs_info->ordered_operations_mutex");
        mutex.Lock();

        bool got = true;
        var other = EmuTask.Run("other", () => got = mutex.Trylock());
        JoinOk(other);

        Assert.That(got, Is.False);
        mutex.Unlock();
        Assert.That(mutex.Trylock(), Is.True);
        mutex.Unlock();
    }

    [Test]
    public void Lock_WhenHeld_SleepsOnTheMutexUntilUnlock()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var mutex = new KMutex("&root->ordered_extent_mutex");
        mutex.Lock();
        bool acquired = false;
        var waiter = EmuTask.Run("fdm-stress", () =>
        {
            using KFrame frame = KFunc.Enter("btrfs_wait_ordered_extents");
            mutex.Lock();
            acquired = true;
            mutex.Unlock();
        });

        WaitUntilSleeping(waiter);
        Assert.That(acquired, Is.False);
        Assert.That(waiter.State, Is.EqualTo(TaskState.Uninterruptible));
        Assert.That(waiter.WaitingOn, Is.SameAs(mutex));
        Assert.That(waiter.Frames, Is.EqualTo(new[] { "schedule", "schedule_preempt_disabled", "mutex_lock_nested", "btrfs_wait_ordered_extents" }));

        mutex.Unlock();
        JoinOk(waiter);
        Assert.That(acquired, Is.True);
    }

    [Test]
    public void Lock_TwoTasksIncrementingUnderTheMutex_LoseNoUpdate()
    {
        const int Iterations = 5_000;
        var mutex = new KMutex("&test->counter_mutex");
        var counter = new int[1];
        var inside = new int[1];
        var overlaps = new int[1];
        var start = new Completion("start");
        void Body()
        {
            start.WaitForCompletion();
            for (int i = 0; i < Iterations; i++)
            {
                mutex.Lock();
                if (Interlocked.Increment(ref inside[0]) != 1)
                {
                    Interlocked.Increment(ref overlaps[0]);
                }

                int v = counter[0];
                Thread.SpinWait(50);
                counter[0] = v + 1;
                Interlocked.Decrement(ref inside[0]);
                mutex.Unlock();
            }
        }

        var a = EmuTask.Run("incr-a", Body);
        var b = EmuTask.Run("incr-b", Body);
        WaitUntilSleeping(a);
        WaitUntilSleeping(b);
        start.CompleteAll();
        JoinOk(a);
        JoinOk(b);

        Assert.That(overlaps[0], Is.Zero, "two tasks inside the critical section");
        Assert.That(counter[0], Is.EqualTo(2 * Iterations));
        Assert.That(mutex.IsLocked, Is.False);
    }

    [Test]
    public void Unlock_ByNonOwner_WarnsAndReleases()
    {
        var mutex = new KMutex("&test->misused_mutex");
        var owner = EmuTask.Run("owner", () => mutex.Lock());
        JoinOk(owner);

        using AdoptedTask self = EmuTask.Adopt("intruder");
        mutex.Unlock();

        Assert.That(Log.Lines.Any(l => l.StartsWith("WARNING: DEBUG_LOCKS_WARN_ON(lock->owner != current)", StringComparison.Ordinal)), Is.True);
        Assert.That(mutex.IsLocked, Is.False);
    }
}
