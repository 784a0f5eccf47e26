// Mirrors: kernel/workqueue_internal.h (v4.4) struct worker, and from kernel/workqueue.c worker_thread,
// process_one_work, process_scheduled_works, move_linked_works, worker_set_flags / worker_clr_flags, the
// scheduler hooks wq_worker_sleeping / wq_worker_running, and print_worker_info.
//
// Model: a worker is one EmuTask (kworker/...) looping in worker_thread: leave idle, make sure an idle worker
// is in reserve (manage_workers), then run work items off the pool's worklist while keep_working() says so,
// then go idle and sleep (TASK_INTERRUPTIBLE, so the hung-task detector ignores it). process_one_work moves a
// work that another worker of the pool is already running to that worker's scheduled list (non-reentrancy),
// clears PENDING before calling the function (so it may be queued again while it runs), and holds the
// workqueue's and the work's lockdep pseudo-locks around the call, as lockdep shows them in hung-task reports.
// Concurrency management: schedule() calls WqWorkerSleeping/WqWorkerRunning on the worker's own thread;
// a worker not flagged NOT_RUNNING leaves nr_running while it sleeps, and the last one to sleep with work
// pending wakes an idle worker.
// Locking legend (see WorkerPool.cs): L pool.Lock; A pool.AttachLock; I set at init; X written by the worker
// itself under L (WORKER_DIE by destroy_worker under L).
// Differs: an idle worker spins briefly (WorkqueueConfig.IdleSpinIterations) before sleeping, so a worker
// woken right away costs no futex round trip; wq_worker_running is called by the woken worker itself (v5.x
// style) rather than by the waker. An exception escaping a work function is reported as a BUG and the worker
// carries on (the kernel would oops and lose the worker).
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>struct worker: one kworker (or rescuer) and what it is running.</summary>
internal sealed class Worker : IWorkqueueWorkerHooks
{
    internal const uint WorkerDie = 1 << 1;            // WORKER_DIE: exit when woken
    internal const uint WorkerIdle = 1 << 2;           // WORKER_IDLE: on the idle list
    internal const uint WorkerPrep = 1 << 3;           // WORKER_PREP: preparing to run works (or a rescuer)
    internal const uint WorkerCpuIntensive = 1 << 6;   // WORKER_CPU_INTENSIVE: running a CPU-intensive work
    internal const uint WorkerUnbound = 1 << 7;        // WORKER_UNBOUND: worker of an unbound pool
    internal const uint WorkerRebound = 1 << 8;        // WORKER_REBOUND: rebound after CPU hotplug

    // WORKER_NOT_RUNNING: flags that keep a worker out of nr_running.
    internal const uint WorkerNotRunning = WorkerPrep | WorkerCpuIntensive | WorkerUnbound | WorkerRebound;

    internal WorkStruct? CurrentWork;      // L: work being processed
    internal WorkFunc? CurrentFunc;        // L: its function
    internal string? CurrentFuncName;      // the worker's; its function's name, read racily by print_worker_info
    internal PoolWorkqueue? CurrentPwq;    // L: its pwq
    internal readonly WorkStruct Scheduled = new(); // L: works to run next on this worker
    internal readonly LinkedListNode<Worker> IdleNode; // L: entry on pool->idle_list
    internal int BusyIndex = -1;           // L: slot in pool busy list, -1 when not busy
    internal long LastActiveMs;            // L: when it last went idle
    internal uint Flags = WorkerPrep;      // X: a new worker is !idle and in PREP
    internal string? Desc;                 // set_worker_desc() by the running work; cleared with current_work
    internal volatile bool StopRequested;  // rescuer: asked to exit (kthread_should_stop)
    private bool _sleeping;                // the worker only: left nr_running in wq_worker_sleeping

    internal Worker(WorkerPool? pool, int id)
    {
        Pool = pool;
        Id = id;
        IdleNode = new LinkedListNode<Worker>(this);
    }

    internal EmuTask Task { get; set; } = null!;    // I

    internal WorkerPool? Pool { get; set; }         // I for pool workers; A/L for the rescuer

    internal int Id { get; }                        // I

    internal Workqueue? RescueWq { get; init; }     // I: set for rescuers only

    // current_wq_worker(): the worker the calling task is, if it is one (not in irq context).
    internal static Worker? CurrentWqWorker()
    {
        EmuTask? task = EmuTask.Current;
        if (task is null || (task.Flags & TaskFlags.WqWorker) == 0 || task.InIrq)
        {
            return null;
        }

        return task.KthreadData as Worker;
    }

    /// <summary>wq_worker_sleeping(): a running worker going to sleep leaves nr_running; the last one wakes an idle worker if work is pending.</summary>
    public void WqWorkerSleeping(EmuTask task)
    {
        // Rescuers and unbound or CPU-intensive workers are outside concurrency management. Only this worker
        // changes its NOT_RUNNING flags, and it is the caller, so the test needs no lock.
        if ((Flags & WorkerNotRunning) != 0)
        {
            return;
        }

        WorkerPool pool = Pool!;
        if (_sleeping)
        {
            pool.System.WarnOnce("wq_worker_sleeping: already sleeping");
            return;
        }

        _sleeping = true;
        EmuTask? toWake = null;
        using (pool.Lock.EnterScope())
        {
            if (Interlocked.Decrement(ref pool.NrRunningRef) == 0 && !WorkList.Empty(pool.Worklist))
            {
                toWake = pool.WorkerToWakeLocked();
            }
        }

        if (toWake is not null)
        {
            Sched.WakeUpProcess(toWake);
        }
    }

    /// <summary>wq_worker_running(): the worker runs again and rejoins nr_running.</summary>
    public void WqWorkerRunning(EmuTask task)
    {
        if (!_sleeping)
        {
            return;
        }

        if ((Flags & WorkerNotRunning) == 0)
        {
            Interlocked.Increment(ref Pool!.NrRunningRef);
        }

        _sleeping = false;
    }

    /// <summary>print_worker_info(): "WQNAME FUNCNAME" plus " (DESC)" while a work runs; null otherwise.</summary>
    public string? WorkerInfo(EmuTask task)
    {
        // Read racily, as the kernel does with probe_kernel_read: the worker may be mid-switch.
        PoolWorkqueue? pwq = Volatile.Read(ref CurrentPwq);
        string? func = Volatile.Read(ref CurrentFuncName);
        string? desc = Volatile.Read(ref Desc);
        if (pwq is null && func is null && desc is null)
        {
            return null;
        }

        string info = $"{pwq?.Wq.Name} {func}";
        return desc is null ? info : $"{info} ({desc})";
    }

    // worker_set_flags(): NOT_RUNNING flags take the worker out of nr_running. Context: L, on the worker.
    internal void WorkerSetFlagsLocked(uint flags)
    {
        Pool!.AssertLocked();
        if ((flags & WorkerNotRunning) != 0 && (Flags & WorkerNotRunning) == 0)
        {
            Interlocked.Decrement(ref Pool!.NrRunningRef);
        }

        Flags |= flags;
    }

    // worker_clr_flags(): clearing the last NOT_RUNNING flag puts the worker back in nr_running. Context: L.
    internal void WorkerClrFlagsLocked(uint flags)
    {
        Pool!.AssertLocked();
        uint oflags = Flags;
        Flags &= ~flags;
        if ((flags & WorkerNotRunning) != 0 && (oflags & WorkerNotRunning) != 0 && (Flags & WorkerNotRunning) == 0)
        {
            Interlocked.Increment(ref Pool!.NrRunningRef);
        }
    }

    // worker_thread(): the body of every pool worker.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void WorkerThread()
    {
        EmuTask task = Task;
        WorkerPool pool = Pool!;
        using KFrame f1 = task.Enter("ret_from_fork");
        using KFrame f2 = task.Enter("kthread");
        using KFrame f3 = task.Enter("worker_thread");
        task.Flags |= TaskFlags.WqWorker; // tell the scheduler that this is a workqueue worker

        while (true)
        {
            pool.Lock.Enter();
            if ((Flags & WorkerDie) != 0)
            {
                pool.Lock.Exit();
                Exit(task, pool);
                return;
            }

            pool.WorkerLeaveIdleLocked(this);
            if (WorkerShouldRun(pool))
            {
                // Finish PREP: from here on the worker counts in nr_running (per-CPU pools only).
                WorkerClrFlagsLocked(WorkerPrep | WorkerRebound);
                do
                {
                    WorkStruct work = pool.Worklist.EntryNext;
                    if ((Volatile.Read(ref work.Data) & WorkStruct.LinkedFlag) == 0)
                    {
                        ProcessOneWorkLocked(work);
                        if (!WorkList.Empty(Scheduled))
                        {
                            ProcessScheduledWorksLocked();
                        }
                    }
                    else
                    {
                        MoveLinkedWorksLocked(work, Scheduled);
                        ProcessScheduledWorksLocked();
                    }
                }
                while (pool.KeepWorking());

                WorkerSetFlagsLocked(WorkerPrep);
            }

            if ((pool.Flags & WorkerPool.PoolDying) != 0)
            {
                pool.NrWorkers--;
                pool.Lock.Exit();
                Exit(task, pool);
                return;
            }

            // A waker can only find this worker on the idle list after its state is set here under pool.Lock,
            // so no wake-up is lost, even one issued after the waker dropped the lock.
            pool.WorkerEnterIdleLocked(this);
            Sched.SetCurrentState(TaskState.Interruptible);
            pool.Lock.Exit();
            IdleSpin(task, pool.System.Config.IdleSpinIterations);
            Sched.Schedule();
        }
    }

    // The recheck: label of worker_thread: is there work this worker should run, after managing if needed?
    // Context: L, may be dropped and retaken by manage_workers().
    private bool WorkerShouldRun(WorkerPool pool)
    {
        while (pool.NeedMoreWorker())
        {
            if (!pool.MayStartWorking() && pool.ManageWorkersLocked(this))
            {
                continue;
            }

            if (!WorkList.Empty(Scheduled))
            {
                pool.System.WarnOnce("worker_thread: scheduled list not empty");
            }

            return true;
        }

        return false;
    }

    // The WORKER_DIE exit: leave the pool and end the task.
    private void Exit(EmuTask task, WorkerPool pool)
    {
        task.Flags &= ~TaskFlags.WqWorker;
        task.SetComm("kworker/dying");
        pool.IdaRemove(Id);
        pool.WorkerDetachFromPool(this);
    }

    // Spin a little before parking: a producer that queues right after the worker went idle then finds it
    // still on the CPU and the wake-up is a state change instead of a futex round trip.
    private static void IdleSpin(EmuTask task, int iterations)
    {
        for (int i = 0; i < iterations; i++)
        {
            if (task.State == TaskState.Running)
            {
                return;
            }

            Thread.SpinWait(16);
        }
    }

    // process_scheduled_works(): runs the scheduled list to empty; it may grow while it runs. Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void ProcessScheduledWorksLocked()
    {
        Pool!.AssertLocked();
        while (!WorkList.Empty(Scheduled))
        {
            ProcessOneWorkLocked(Scheduled.EntryNext);
        }
    }

    // move_linked_works(): moves work and the works LINKED after it to the tail of head; returns the entry
    // after the last one moved (the nextp of a safe list walk). Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static WorkStruct MoveLinkedWorksLocked(WorkStruct work, WorkStruct head)
    {
        while (true)
        {
            WorkStruct next = work.EntryNext;
            WorkList.MoveTail(work, head);
            if ((Volatile.Read(ref work.Data) & WorkStruct.LinkedFlag) == 0)
            {
                return next;
            }

            work = next;
        }
    }

    // process_one_work(). Context: L, dropped around the work function and retaken.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void ProcessOneWorkLocked(WorkStruct work)
    {
        WorkerPool pool = Pool!;
        pool.AssertLocked();
        WorkqueueSystem system = pool.System;
        PoolWorkqueue pwq = system.GetWorkPwq(work)!;
        bool cpuIntensive = (pwq.Wq.Flags & WqFlags.CpuIntensive) != 0;

        // Non-reentrancy: a work already running on another worker of this pool runs next on that worker.
        Worker? collision = pool.FindWorkerExecutingWorkLocked(work);
        if (collision is not null)
        {
            MoveLinkedWorksLocked(work, collision.Scheduled);
            return;
        }

        pool.BusyAddLocked(this);
        pwq.Stats.Started++;
        WorkFunc func = work.Func;
        string funcName = work.FuncName;
        CurrentWork = work;
        CurrentFunc = func;
        Volatile.Write(ref CurrentPwq, pwq);
        LockdepMap workMap = work.LockdepMap; // the function may reinitialize or drop the work
        int workColor = WorkStruct.ColorOf(Volatile.Read(ref work.Data));

        WorkList.DelInit(work);

        // CPU-intensive works leave concurrency management; the check below then chains the next work.
        if (cpuIntensive)
        {
            WorkerSetFlagsLocked(WorkerCpuIntensive);
        }

        // Always false for a running per-CPU worker (nr_running >= 1); chains execution for NOT_RUNNING ones.
        EmuTask? toWake = pool.NeedMoreWorker() ? pool.WorkerToWakeLocked() : null;

        // Record the last pool and clear PENDING, the last update to the work, with a full barrier: a queuer
        // that finds PENDING clear must see everything the function will read.
        Interlocked.Exchange(ref work.Data, (long)pool.Id << WorkStruct.OffqPoolShift);

        pool.Lock.Exit();

        // Only reports read the name, racily: it need not be published under the lock.
        Volatile.Write(ref CurrentFuncName, funcName);
        if (toWake is not null)
        {
            Sched.WakeUpProcess(toWake);
        }

        RunWorkFunction(work, func, pwq.Wq, workMap);
        pool.Lock.Enter();

        if (cpuIntensive)
        {
            WorkerClrFlagsLocked(WorkerCpuIntensive);
        }

        pool.BusyRemoveLocked(this);
        CurrentWork = null;
        CurrentFunc = null;
        Volatile.Write(ref CurrentFuncName, null);
        Volatile.Write(ref CurrentPwq, null);
        Volatile.Write(ref Desc, null);
        pwq.Stats.Completed++;
        pwq.PwqDecNrInFlightLocked(workColor);
    }

    // The unlocked middle of process_one_work(): the pseudo-locks, the call, the leak check.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunWorkFunction(WorkStruct work, WorkFunc func, Workqueue wq, LockdepMap workMap)
    {
        EmuTask task = Task;
        using KFrame frame = task.Enter("process_one_work");
        HeldLocks.AcquiredByCurrent(task, wq.LockdepMap, wq.LockdepMap.Class, read: true, at: "process_one_work");
        HeldLocks.AcquiredByCurrent(task, workMap, workMap.Class, read: false, at: "process_one_work");
        Sched.Point(SchedPoint.ProcessWork);
        KernelTrace.WorkqueueExecuteStart(wq, CurrentFuncName);
        try
        {
            func(work);
        }
        catch (Exception e)
        {
            Klog.Bug($"BUG: workqueue function {CurrentFuncName} threw {e.GetType().Name}: {e.Message}", task);
        }

        KernelTrace.WorkqueueExecuteEnd();
        HeldLocks.ReleasedByCurrent(task, workMap);
        HeldLocks.ReleasedByCurrent(task, wq.LockdepMap);

        if (task.InAtomic || HeldLocks.CountOfCurrent(task) > 0)
        {
            Klog.Bug($"BUG: workqueue leaked lock or atomic: {task.Comm}/0x{task.PreemptCount:x8}/{task.Pid}", null);
            Klog.Printk($"     last function: {CurrentFuncName}");
            foreach (string line in HeldLocks.Format(task).Split('\n'))
            {
                Klog.Printk(line);
            }

            Klog.DumpStack(task);
        }

        // cond_resched_rcu_qs(): a requeueing work must not hog the CPU.
        Sched.CondResched();
    }

    // set_cpus_allowed_ptr() on the calling worker (the rescuer, as it attaches to a pool).
    internal void PinSelf(int[] cpus)
    {
        int rc = Emu.Interop.Affinity.PinCurrentThread(cpus);
        if (rc != 0)
        {
            Klog.Printk($"WARNING: {Task}: cannot pin to CPUs {string.Join(',', cpus)}: error {rc}");
        }
    }
}
