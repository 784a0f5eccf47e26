// Mirrors: kernel/workqueue.c (v4.4) struct pool_workqueue and get_pwq, put_pwq, pwq_activate_delayed_work,
// pwq_activate_first_delayed, pwq_dec_nr_in_flight, pwq_adjust_max_active, pwq_unbound_release_workfn.
//
// Model: a pwq links one workqueue to one pool (per CPU for bound workqueues, per NUMA node plus a default for
// unbound ones). It counts the workqueue's items on that pool: nr_in_flight per flush color (what
// flush_workqueue waits for, delayed items included) and nr_active against max_active; items beyond
// max_active wait on delayed_works and are activated, oldest first, as active ones complete. max_active is the
// workqueue's saved_max_active, or 0 while a freezable workqueue is frozen.
// Locking legend: I set at init; L pool.Lock; WQ wq.Mutex; MD WorkqueueSystem.MaydayLock.
// Differs: Emu frees a released unbound pwq at once instead of after an RCU grace period.
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>struct pool_workqueue.</summary>
internal sealed class PoolWorkqueue
{
    internal readonly WorkerPool Pool;                   // I
    internal readonly Workqueue Wq;                      // I
    internal readonly int Id;                            // I: what work->data holds while queued here
    internal ColorCounts NrInFlight;                     // L: inline, on the lines queueing already touches
    internal readonly WorkStruct DelayedWorks = new();   // L: items beyond max_active, in queueing order
    internal readonly WorkStruct? UnboundReleaseWork;    // I: unbound pwqs are released from system_wq
    internal int WorkColor;                              // L: color of newly queued items
    internal int FlushColor = -1;                        // L: color being flushed, -1 if none
    internal int Refcnt = 1;                             // L
    internal int NrActive;                               // L
    internal int MaxActive;                              // L
    internal bool OnMaydayList;                          // MD: queued on wq->maydays
    internal bool Linked;                                // WQ: on wq->pwqs
    internal PwqStats Stats;                             // L: pwq->stats (v6.3+), read by WqMetrics

    private static readonly WorkFunc s_pwqUnboundReleaseWorkfn = PwqUnboundReleaseWorkfn;

    // init_pwq()
    internal PoolWorkqueue(Workqueue wq, WorkerPool pool, int id)
    {
        Wq = wq;
        Pool = pool;
        Id = id;
        if ((wq.Flags & WqFlags.Unbound) != 0)
        {
            UnboundReleaseWork = new ReleaseWork(this);
        }
    }

    // get_pwq(). Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void GetPwqLocked()
    {
        Pool.AssertLocked();
        if (Refcnt <= 0)
        {
            Pool.System.WarnOnce($"get_pwq: pwq of {Wq.Name} has refcnt {Refcnt}");
        }

        Refcnt++;
    }

    // put_pwq(): the last reference of an unbound pwq is released from system_wq, as pool.Lock must not be
    // held for it. Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void PutPwqLocked()
    {
        Pool.AssertLocked();
        if (--Refcnt != 0)
        {
            return;
        }

        if (UnboundReleaseWork is null)
        {
            Pool.System.WarnOnce($"put_pwq: last reference of per-cpu pwq of {Wq.Name}");
            return;
        }

        Pool.System.SystemWq.QueueWork(UnboundReleaseWork);
    }

    // put_pwq_unlocked()
    internal void PutPwqUnlocked()
    {
        using (Pool.Lock.EnterScope())
        {
            PutPwqLocked();
        }
    }

    // pwq_activate_delayed_work(): a delayed item (and the barriers linked to it) join the pool's worklist.
    // A queued work's data changes only under its pool lock (PENDING keeps queuers off it), so, like the
    // kernel's __clear_bit, this needs no atomic. Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void PwqActivateDelayedWorkLocked(WorkStruct work)
    {
        Pool.AssertLocked();
        Worker.MoveLinkedWorksLocked(work, Pool.Worklist);
        Volatile.Write(ref work.Data, Volatile.Read(ref work.Data) & ~WorkStruct.DelayedFlag);
        NrActive++;
    }

    // pwq_activate_first_delayed(). Context: L.
    internal void PwqActivateFirstDelayedLocked() => PwqActivateDelayedWorkLocked(DelayedWorks.EntryNext);

    // pwq_dec_nr_in_flight(): an item of this color completed or was taken off the queue: free its active slot
    // (activating the next delayed item) and, if it was the last of the color being flushed, tell the first
    // flusher once every pwq is done. Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void PwqDecNrInFlightLocked(int color)
    {
        Pool.AssertLocked();
        if (color != WorkStruct.NoColor)
        {
            NrInFlight[color]--;
            NrActive--;
            if (!WorkList.Empty(DelayedWorks) && NrActive < MaxActive)
            {
                PwqActivateFirstDelayedLocked();
            }

            if (FlushColor == color && NrInFlight[color] == 0)
            {
                FlushColor = -1;
                if (Interlocked.Decrement(ref Wq.NrPwqsToFlush) == 0)
                {
                    Wq.FirstFlusher!.Done.Complete();
                }
            }
        }

        PutPwqLocked();
    }

    // pwq_adjust_max_active(): follow saved_max_active, or 0 while frozen; activate what now fits and kick a
    // worker. Context: WQ.
    internal void PwqAdjustMaxActiveLocked()
    {
        Debug.Assert(Wq.Mutex.IsHeldByCurrentThread, "wq->mutex must be held");
        bool freezable = (Wq.Flags & WqFlags.Freezable) != 0;
        using (Pool.Lock.EnterScope())
        {
            if (!freezable && MaxActive == Wq.SavedMaxActive)
            {
                return;
            }

            if (!freezable || !Pool.System.WorkqueueFreezing)
            {
                MaxActive = Wq.SavedMaxActive;
                while (!WorkList.Empty(DelayedWorks) && NrActive < MaxActive)
                {
                    PwqActivateFirstDelayedLocked();
                }

                // Kick a worker after a thaw or a max_active bump: a slow path, so always (v4.4).
                Pool.WakeUpWorkerLocked();
            }
            else
            {
                MaxActive = 0;
            }
        }
    }

    // pwq_unbound_release_workfn(): unlink the dead pwq from its workqueue and drop its pool reference.
    private static void PwqUnboundReleaseWorkfn(WorkStruct work)
    {
        using KFrame frame = KFunc.Enter("pwq_unbound_release_workfn");
        PoolWorkqueue pwq = ((ReleaseWork)work).Pwq;
        pwq.Wq.UnlinkPwq(pwq);
        pwq.Pool.System.PutUnboundPool(pwq.Pool);
        pwq.Pool.System.FreePwqId(pwq);
    }

    // nr_in_flight[WORK_NR_COLORS]: an inline array, so counting an item touches no object besides the pwq.
    [InlineArray(WorkStruct.NrColors)]
    internal struct ColorCounts
    {
        private int _color0;
    }

    private sealed class ReleaseWork(PoolWorkqueue pwq)
        : WorkStruct(s_pwqUnboundReleaseWorkfn, "pwq_unbound_release_workfn", "(&pwq->unbound_release_work)")
    {
        public PoolWorkqueue Pwq { get; } = pwq;
    }
}
