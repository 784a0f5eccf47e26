// Mirrors: kernel/workqueue.c (v4.4) flush_workqueue (flush colors, flusher queue and overflow),
// flush_workqueue_prep_pwqs, drain_workqueue, wq_barrier / insert_wq_barrier / start_flush_work / flush_work,
// __cancel_work_timer, cancel_work_sync, flush_delayed_work, cancel_delayed_work(_sync).
//
// Model: flush_workqueue gives every item queued from now on a new color and waits until no item of the old
// color is in flight on any pwq (delayed ones included), so it waits for what was queued before it and never
// for what comes after; concurrent flushers line up in color order (15 colors; further flushers overflow and
// get a color when one frees up) and the first flusher hands over to the next. flush_work instead inserts a
// barrier work right after the target (LINKED, so it moves with it) or, if the target is running, at the head
// of that worker's scheduled list, and waits for the barrier. cancel_work_sync steals PENDING (unlinking the
// work or killing its timer), marks the work CANCELING so nobody else can take it, flushes the running instance
// and clears the work.
// Locking legend: WQ Mutex; L pool.Lock.
// Differs: flushers and barriers are heap objects (the kernel's live on the stack); waits go through Emu's
// completions, so a flusher blocked forever shows in the wait-for graph.
using System.Diagnostics;

namespace Emu.Kernel;

public sealed partial class Workqueue
{
    /// <summary>
    /// flush_workqueue(): waits until every item queued before the call has finished (not those queued
    /// after). Sleeps; call from an emulated task.
    /// </summary>
    public void FlushWorkqueue()
    {
        EmuTask task = Wait.CurrentTask();
        using KFrame frame = task.Enter("flush_workqueue");
        LockMapAcquireRelease(task, LockdepMap, read: false);

        var thisFlusher = new WqFlusher();
        lock (Mutex)
        {
            // Start-to-wait phase.
            int nextColor = WorkNextColor(WorkColor);
            if (nextColor != FlushColor)
            {
                // The color space is not full: the current work color becomes ours and advances.
                thisFlusher.FlushColor = WorkColor;
                WorkColor = nextColor;

                if (FirstFlusher is null)
                {
                    FirstFlusher = thisFlusher;
                    if (!FlushWorkqueuePrepPwqsLocked(FlushColor, WorkColor))
                    {
                        // Nothing to flush.
                        FlushColor = nextColor;
                        FirstFlusher = null;
                        return;
                    }
                }
                else
                {
                    FlusherQueue.Add(thisFlusher);
                    FlushWorkqueuePrepPwqsLocked(-1, WorkColor);
                }
            }
            else
            {
                // Every color is in use: the next flush completion gives us one.
                FlusherOverflow.Add(thisFlusher);
            }
        }

        thisFlusher.Done.WaitForCompletion();

        // Wake-up-and-cascade phase: only the first flusher hands over.
        lock (Mutex)
        {
            if (FirstFlusher != thisFlusher)
            {
                return;
            }

            FirstFlusher = null;
            while (true)
            {
                // Complete every flusher waiting for the color just flushed.
                while (FlusherQueue.Count > 0 && FlusherQueue[0].FlushColor == FlushColor)
                {
                    WqFlusher done = FlusherQueue[0];
                    FlusherQueue.RemoveAt(0);
                    done.Done.Complete();
                }

                FlushColor = WorkNextColor(FlushColor);

                // A color was freed: the overflowed flushers take it and start waiting.
                if (FlusherOverflow.Count > 0)
                {
                    foreach (WqFlusher overflowed in FlusherOverflow)
                    {
                        overflowed.FlushColor = WorkColor;
                    }

                    WorkColor = WorkNextColor(WorkColor);
                    FlusherQueue.AddRange(FlusherOverflow);
                    FlusherOverflow.Clear();
                    FlushWorkqueuePrepPwqsLocked(-1, WorkColor);
                }

                if (FlusherQueue.Count == 0)
                {
                    break;
                }

                // Flush the next color: its first flusher takes over.
                WqFlusher next = FlusherQueue[0];
                FlusherQueue.RemoveAt(0);
                FirstFlusher = next;
                if (FlushWorkqueuePrepPwqsLocked(FlushColor, -1))
                {
                    break;
                }

                // That color had nothing in flight either.
                FirstFlusher = null;
            }
        }
    }

    /// <summary>
    /// drain_workqueue(): flushes until the workqueue is empty; meanwhile only its own running items may queue
    /// on it (chained work). Sleeps; call from an emulated task.
    /// </summary>
    public void DrainWorkqueue()
    {
        EmuTask task = Wait.CurrentTask();
        using KFrame frame = task.Enter("drain_workqueue");
        lock (Mutex)
        {
            if (NrDrainers++ == 0)
            {
                _flags |= (int)WqFlags.Draining;
            }
        }

        int flushCnt = 0;
        while (true)
        {
            FlushWorkqueue();

            bool drained = true;
            lock (Mutex)
            {
                foreach (PoolWorkqueue pwq in _pwqs)
                {
                    using (pwq.Pool.Lock.EnterScope())
                    {
                        drained = pwq.NrActive == 0 && WorkList.Empty(pwq.DelayedWorks);
                    }

                    if (!drained)
                    {
                        break;
                    }
                }

                if (drained)
                {
                    if (--NrDrainers == 0)
                    {
                        _flags &= ~(int)WqFlags.Draining;
                    }

                    return;
                }
            }

            if (++flushCnt == 10 || (flushCnt % 100 == 0 && flushCnt <= 1000))
            {
                Klog.Printk($"workqueue {Name}: drain_workqueue() isn't complete after {flushCnt} tries");
            }
        }
    }

    /// <summary>
    /// flush_work(): waits until the last queueing of <paramref name="work"/> has finished running.
    /// Sleeps; call from an emulated task.
    /// </summary>
    /// <returns>true if it waited, false if the work was already idle.</returns>
    public static bool FlushWork(WorkStruct work)
    {
        ArgumentNullException.ThrowIfNull(work);
        EmuTask task = Wait.CurrentTask();
        using KFrame frame = task.Enter("flush_work");
        LockMapAcquireRelease(task, work.LockdepMap, read: false);

        WqBarrier? barrier = StartFlushWork(task, work);
        if (barrier is null)
        {
            return false;
        }

        barrier.Done.WaitForCompletion();
        return true;
    }

    /// <summary>
    /// cancel_work_sync(): takes <paramref name="work"/> off its queue if pending and waits for a running
    /// instance to finish; on return it is neither pending nor running. Sleeps; call from an emulated task.
    /// Use <see cref="CancelDelayedWorkSync"/> for delayed works.
    /// </summary>
    /// <returns>true if the work was pending.</returns>
    public static bool CancelWorkSync(WorkStruct work)
    {
        ArgumentNullException.ThrowIfNull(work);
        return CancelWorkTimer(work, isDwork: false);
    }

    /// <summary>flush_delayed_work(): queues a delayed work now if its timer is armed, then flushes it.</summary>
    /// <returns>true if it waited, false if the work was already idle.</returns>
    public static bool FlushDelayedWork(DelayedWork dwork)
    {
        ArgumentNullException.ThrowIfNull(dwork);
        if (dwork.System is { } system && system.Timers.DelTimerSync(dwork.Timer))
        {
            dwork.Wq!.__QueueWork(dwork.Cpu, dwork);
        }

        return FlushWork(dwork);
    }

    /// <summary>
    /// cancel_delayed_work(): kills a pending delayed work (timer or queue) without waiting for a running
    /// instance. Does not sleep.
    /// </summary>
    /// <returns>true if it was pending and is now cancelled.</returns>
    public static bool CancelDelayedWork(DelayedWork dwork)
    {
        ArgumentNullException.ThrowIfNull(dwork);
        int ret;
        do
        {
            ret = TryToGrabPending(dwork, isDwork: true);
        }
        while (ret == -EAGAIN);

        if (ret < 0)
        {
            return false;
        }

        SetWorkPoolAndClearPending(dwork, GetWorkPoolId(dwork));
        return ret != 0;
    }

    /// <summary>cancel_delayed_work_sync(): <see cref="CancelWorkSync"/> for delayed works.</summary>
    /// <returns>true if the work was pending.</returns>
    public static bool CancelDelayedWorkSync(DelayedWork dwork)
    {
        ArgumentNullException.ThrowIfNull(dwork);
        return CancelWorkTimer(dwork, isDwork: true);
    }

    // flush_workqueue_prep_pwqs(): arm the pwqs with items of flushColor in flight (if flushColor >= 0) and
    // advance every pwq's work color to workColor (if >= 0). Returns whether anything is in flight.
    // Context: WQ.
    private bool FlushWorkqueuePrepPwqsLocked(int flushColor, int workColor)
    {
        Debug.Assert(Mutex.IsHeldByCurrentThread, "wq->mutex must be held");
        bool wait = false;
        if (flushColor >= 0)
        {
            Volatile.Write(ref NrPwqsToFlush, 1);
        }

        foreach (PoolWorkqueue pwq in _pwqs)
        {
            using (pwq.Pool.Lock.EnterScope())
            {
                if (flushColor >= 0 && pwq.NrInFlight[flushColor] != 0)
                {
                    pwq.FlushColor = flushColor;
                    Interlocked.Increment(ref NrPwqsToFlush);
                    wait = true;
                }

                if (workColor >= 0)
                {
                    pwq.WorkColor = workColor;
                }
            }
        }

        if (flushColor >= 0 && Interlocked.Decrement(ref NrPwqsToFlush) == 0)
        {
            FirstFlusher!.Done.Complete();
        }

        return wait;
    }

    // work_next_color()
    private static int WorkNextColor(int color) => (color + 1) % WorkStruct.NrColors;

    // start_flush_work(): queue a barrier behind the work's last queueing, or null if it is idle.
    private static WqBarrier? StartFlushWork(EmuTask task, WorkStruct work)
    {
        WorkqueueSystem? system = work.System;
        WorkerPool? pool = system?.GetWorkPool(work);
        if (pool is null)
        {
            return null;
        }

        PoolWorkqueue pwq;
        WqBarrier barrier;
        EmuTask? toWake;
        using (pool.Lock.EnterScope())
        {
            // See try_to_grab_pending(): a pwq of the locked pool means the work is queued on it.
            PoolWorkqueue? queuedOn = system!.GetWorkPwq(work);
            Worker? worker = null;
            if (queuedOn is not null)
            {
                if (queuedOn.Pool != pool)
                {
                    return null;
                }

                pwq = queuedOn;
            }
            else
            {
                worker = pool.FindWorkerExecutingWorkLocked(work);
                if (worker is null)
                {
                    return null;
                }

                pwq = worker.CurrentPwq!;
            }

            barrier = new WqBarrier(task, worker?.Task);
            toWake = InsertWqBarrierLocked(pwq, barrier, work, worker);
        }

        if (toWake is not null)
        {
            Sched.WakeUpProcess(toWake);
        }

        // Flushing another item of a max_active 1 or rescuer-backed workqueue from inside it can deadlock:
        // lockdep sees a write acquisition there.
        Workqueue wq = pwq.Wq;
        LockMapAcquireRelease(task, wq.LockdepMap, read: !(wq.MaxActive == 1 || wq.RescuerWorker is not null));
        return barrier;
    }

    // insert_wq_barrier(): link the barrier right after the target (or first on the worker running it); it
    // carries no color so flush_workqueue ignores it. Returns the worker to wake after unlocking. Context: L.
    private static EmuTask? InsertWqBarrierLocked(PoolWorkqueue pwq, WqBarrier barrier, WorkStruct target, Worker? worker)
    {
        pwq.Pool.AssertLocked();
        WorkStruct pos;
        long linked = 0;
        if (worker is not null)
        {
            pos = worker.Scheduled.EntryNext;
        }
        else
        {
            pos = target.EntryNext;
            // There may already be linked works: inherit the flag and set it.
            linked = Volatile.Read(ref target.Data) & WorkStruct.LinkedFlag;
            Interlocked.Or(ref target.Data, WorkStruct.LinkedFlag);
        }

        barrier.System = pwq.Pool.System;
        return InsertWorkLocked(pwq, barrier, pos, WorkStruct.ColorToFlags(WorkStruct.NoColor) | linked, runnable: true);
    }

    // __cancel_work_timer()
    private static bool CancelWorkTimer(WorkStruct work, bool isDwork)
    {
        EmuTask task = Wait.CurrentTask();
        using KFrame frame = task.Enter("__cancel_work_timer");
        int ret;
        do
        {
            ret = TryToGrabPending(work, isDwork);
            if (ret == -ENOENT)
            {
                // Someone else is cancelling it: wait for them to finish (flush_work would not do: it returns
                // as soon as the work is idle, before the other canceller clears CANCELING).
                WaitForCancelingToEnd(task, work);
            }
        }
        while (ret < 0);

        MarkWorkCanceling(work); // others trying to grab the work back off
        FlushWork(work);
        Interlocked.Exchange(ref work.Data, WorkStruct.NoPool); // clear_work_data(), with a full barrier
        WaitBit.WakeUpBit(work, WorkStruct.OffqCancelingBit);
        return ret != 0;
    }

    // The cancel_waitq wait of __cancel_work_timer(): an exclusive wait keyed by the work.
    private static void WaitForCancelingToEnd(EmuTask task, WorkStruct work)
    {
        WaitQueueHead wq = WaitBit.BitWaitqueue(work, WorkStruct.OffqCancelingBit);
        WaitQueueEntry entry = task.WaitEntry;
        Wait.Prepare(wq, entry, TaskState.Uninterruptible, exclusive: true, work, WorkStruct.OffqCancelingBit, null);
        if (WorkIsCanceling(work))
        {
            Sched.Schedule();
        }

        Wait.FinishWait(wq, entry);
    }

    // mark_work_canceling(): off queue, PENDING kept, CANCELING set.
    private static void MarkWorkCanceling(WorkStruct work)
    {
        long poolId = GetWorkPoolId(work);
        Volatile.Write(ref work.Data, (poolId << WorkStruct.OffqPoolShift) | WorkStruct.OffqCanceling | WorkStruct.PendingFlag);
    }

    // lock_map_acquire(); lock_map_release(): records the usage lockdep would see, holds nothing.
    private static void LockMapAcquireRelease(EmuTask task, LockdepMap map, bool read)
    {
        HeldLocks.Acquired(task, map, map.Class, read);
        HeldLocks.Released(task, map);
    }
}

/// <summary>struct wq_flusher: one flush_workqueue() caller waiting for its color.</summary>
internal sealed class WqFlusher
{
    public int FlushColor = -1;                                  // WQ
    public readonly Completion Done = new("&this_flusher.done");
}

/// <summary>struct wq_barrier: the work flush_work() queues behind its target and waits for.</summary>
internal sealed class WqBarrier : WorkStruct
{
    private static readonly WorkFunc s_wqBarrierFunc = WqBarrierFunc;

    public WqBarrier(EmuTask flusher, EmuTask? expectedCompleter)
        : base(s_wqBarrierFunc, "wq_barrier_func", "(&barr->work)")
    {
        Task = flusher;
        Done = new Completion("&barr->done") { ExpectedCompleter = expectedCompleter };
        Data = NoPool | PendingFlag; // the flusher owns it from the start
    }

    /// <summary>Completed when the barrier runs.</summary>
    public Completion Done { get; }

    /// <summary>The flushing task (informational).</summary>
    public EmuTask Task { get; }

    private static void WqBarrierFunc(WorkStruct work)
    {
        using KFrame frame = KFunc.Enter("wq_barrier_func");
        ((WqBarrier)work).Done.Complete();
    }
}
