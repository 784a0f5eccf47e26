// Mirrors: kernel/workqueue.c (v4.4) send_mayday and rescuer_thread.
//
// Model: a WQ_MEM_RECLAIM workqueue owns a rescuer, a kthread named after the workqueue. When a pool cannot
// create a worker for longer than MAYDAY_INITIAL_TIMEOUT, its mayday timer puts the pwqs of the items on its
// worklist on their workqueues' mayday lists and wakes their rescuers. A rescuer attaches to the pool, takes
// every item of its own pwq off the worklist and runs them itself, then asks again if the pool still cannot get
// a worker. It guarantees progress only when worker creation is what is stuck: it does not help an item that
// is blocked on a lock, and it runs nothing beyond the pwq's max_active (delayed items stay delayed).
// Locking legend: MD WorkqueueSystem.MaydayLock; L pool.Lock.
// Differs: the rescuer also exits when the WorkqueueSystem shuts down (StopRequested), not only on kthread_stop.
using System.Diagnostics;

namespace Emu.Kernel;

public sealed partial class Workqueue
{
    // send_mayday(): ask the rescuer of the work's workqueue to process its pwq. Context: L and MD.
    internal static void SendMaydayLocked(WorkqueueSystem system, WorkStruct work)
    {
        Debug.Assert(system.MaydayLock.IsHeldByCurrentThread, "wq_mayday_lock must be held");
        PoolWorkqueue pwq = system.GetWorkPwq(work)!;
        Workqueue wq = pwq.Wq;
        Worker? rescuer = wq.RescuerWorker;
        if (rescuer is null || pwq.OnMaydayList)
        {
            return;
        }

        // Pin the pwq until the rescuer is done with it.
        pwq.GetPwqLocked();
        pwq.OnMaydayList = true;
        pwq.Stats.Mayday++;
        wq.Maydays.Add(pwq);
        Sched.WakeUpProcess(rescuer.Task);
    }

    // rescuer_thread(): the rescuer's body.
    private void RescuerThread()
    {
        EmuTask task = EmuTask.CurrentOrThrow;
        var rescuer = (Worker)task.KthreadData!;
        using KFrame f1 = task.Enter("ret_from_fork");
        using KFrame f2 = task.Enter("kthread");
        using KFrame f3 = task.Enter("rescuer_thread");

        // Marked as a worker too; WORKER_PREP is never cleared, so it stays out of concurrency management.
        task.Flags |= TaskFlags.WqWorker;
        while (true)
        {
            Sched.SetCurrentState(TaskState.Interruptible);

            // Process the mayday list before acting on a stop request, so the list is empty on exit.
            bool shouldStop = task.KthreadShouldStop || rescuer.StopRequested;

            System.MaydayLock.Enter();
            while (Maydays.Count > 0)
            {
                PoolWorkqueue pwq = Maydays[0];
                Maydays.RemoveAt(0);
                pwq.OnMaydayList = false;
                Sched.SetCurrentState(TaskState.Running);
                System.MaydayLock.Exit();

                RescuePwq(rescuer, pwq);

                System.MaydayLock.Enter();
            }

            System.MaydayLock.Exit();

            if (shouldStop)
            {
                Sched.SetCurrentState(TaskState.Running);
                task.Flags &= ~TaskFlags.WqWorker;
                return;
            }

            if ((rescuer.Flags & Worker.WorkerNotRunning) == 0)
            {
                System.WarnOnce($"rescuer of {Name} is in concurrency management");
            }

            Sched.Schedule();
        }
    }

    // One iteration of the mayday loop: run every item of pwq waiting on its pool.
    private void RescuePwq(Worker rescuer, PoolWorkqueue pwq)
    {
        WorkerPool pool = pwq.Pool;
        pool.WorkerAttachToPool(rescuer);

        pool.Lock.Enter();
        rescuer.Pool = pool;

        // Slurp in every item issued through this pwq.
        WorkStruct scheduled = rescuer.Scheduled;
        WorkStruct work = pool.Worklist.EntryNext;
        while (work != pool.Worklist)
        {
            work = System.GetWorkPwq(work) == pwq
                ? Worker.MoveLinkedWorksLocked(work, scheduled)
                : work.EntryNext;
        }

        if (!WorkList.Empty(scheduled))
        {
            rescuer.ProcessScheduledWorksLocked();

            // Running the rescued items may have activated more (delayed items, chained queueing): stay on the
            // mayday list rather than wait for the next MAYDAY_INTERVAL.
            if (pool.NeedToCreateWorker())
            {
                lock (System.MaydayLock)
                {
                    if (RescuerWorker is not null && !pwq.OnMaydayList)
                    {
                        pwq.GetPwqLocked();
                        pwq.OnMaydayList = true;
                        Maydays.Add(pwq);
                    }
                }
            }
        }

        // The reference send_mayday() took.
        pwq.PutPwqLocked();

        // Leaving: if work remains, a regular worker must go on, or the pool stalls at zero concurrency.
        if (pool.NeedMoreWorker())
        {
            pool.WakeUpWorkerLocked();
        }

        rescuer.Pool = null;
        pool.Lock.Exit();

        pool.WorkerDetachFromPool(rescuer);
    }
}
