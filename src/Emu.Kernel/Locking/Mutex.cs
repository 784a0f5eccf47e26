// Mirrors: kernel/locking/mutex.c (v4.4): mutex_lock, mutex_trylock, mutex_unlock, mutex_is_locked.
//
// Model: a lock word taken by compare-and-swap (fast path) and a wait queue of exclusive waiters (slow path:
// prepare_to_wait_exclusive, retry, schedule). Unlock clears the word with a full barrier and wakes one
// waiter if the queue is non-empty; a waiter that loses the race to a fast-path locker queues again. The owner
// is recorded for reports and the wait-for graph, and each hold is recorded in the owner's held locks.
// Differs: no optimistic spinning and no hand-off; waiters are woken in FIFO order but may be overtaken.
// Unlock by a task other than the owner prints the DEBUG_MUTEXES warning and proceeds.
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>struct mutex.</summary>
public sealed class KMutex : IWaitResource
{
    private readonly WaitQueueHead _wait; // I
    private int _locked;                  // Interlocked: 1 while held
    private EmuTask? _owner;              // written by the holder; read racily by reports

    /// <summary>mutex_init().</summary>
    /// <param name="className">Lockdep class, e.g. "&amp;root->ordered_extent_mutex".</param>
    public KMutex(string className)
    {
        Class = LockClass.Get(className);
        _wait = new WaitQueueHead(this);
    }

    /// <summary>The mutex's lockdep class.</summary>
    public LockClass Class { get; }

    /// <summary>The holder, or null when free (or held by a host thread).</summary>
    public EmuTask? Owner => Volatile.Read(ref _owner);

    /// <summary>mutex_is_locked().</summary>
    public bool IsLocked => Volatile.Read(ref _locked) != 0;

    /// <summary>mutex_lock(): takes the mutex, sleeping uninterruptibly while another task holds it.</summary>
    public void Lock()
    {
        EmuTask? task = EmuTask.Current;
        string? at = task?.TopFrame;
        using KFrame frame = KFunc.Enter("mutex_lock_nested");
        Sched.Point(SchedPoint.MutexLock);
        if (Interlocked.CompareExchange(ref _locked, 1, 0) != 0)
        {
            LockSlowpath();
        }

        SetOwner(task, at);
    }

    /// <summary>mutex_trylock(): takes the mutex if it is free.</summary>
    public bool Trylock()
    {
        if (Interlocked.CompareExchange(ref _locked, 1, 0) != 0)
        {
            return false;
        }

        EmuTask? task = EmuTask.Current;
        SetOwner(task, task?.TopFrame);
        return true;
    }

    /// <summary>mutex_unlock(): releases the mutex and wakes one waiter.</summary>
    public void Unlock()
    {
        EmuTask? owner = Volatile.Read(ref _owner);
        EmuTask? current = EmuTask.Current;
        if (Volatile.Read(ref _locked) == 0 || owner != current)
        {
            Klog.Printk($"WARNING: DEBUG_LOCKS_WARN_ON(lock->owner != current): {Class.Name} unlocked by {current?.ToString() ?? "a host thread"}, owner {owner?.ToString() ?? "none"}");
        }

        Sched.Point(SchedPoint.MutexUnlock);
        Volatile.Write(ref _owner, null);
        if (owner is not null)
        {
            HeldLocks.Released(owner, this);
        }

        // The exchange is a full barrier: it orders the release before the waiter check, pairing with the
        // waiter's queueing before its compare-and-swap.
        Interlocked.Exchange(ref _locked, 0);
        if (_wait.Active)
        {
            Wait.WakeUp(_wait);
        }
    }

    /// <inheritdoc />
    public string Describe() => Class.Name;

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
        EmuTask? owner = Owner;
        if (owner is not null)
        {
            holders.Add(owner);
        }
    }

    private void SetOwner(EmuTask? task, string? at)
    {
        Volatile.Write(ref _owner, task);
        if (task is not null)
        {
            HeldLocks.Acquired(task, this, Class, read: false, at);
        }
    }

    // __mutex_lock_common(): queue, retry, schedule.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void LockSlowpath()
    {
        EmuTask task = Wait.CurrentTask();
        WaitQueueEntry entry = task.WaitEntry;
        while (true)
        {
            Wait.PrepareToWaitExclusive(_wait, entry, TaskState.Uninterruptible, this);
            if (Interlocked.CompareExchange(ref _locked, 1, 0) == 0)
            {
                break;
            }

            using KFrame frame = task.Enter("schedule_preempt_disabled");
            Sched.Schedule();
        }

        Wait.FinishWait(_wait, entry);
    }
}
