// Mirrors: kernel/workqueue.c (v4.4) struct workqueue_struct and the queueing side: __alloc_workqueue_key,
// alloc_and_link_pwqs, apply_workqueue_attrs (at allocation), wq_clamp_max_active, queue_work_on,
// __queue_work, insert_work, is_chained_work, delayed_work_timer_fn, __queue_delayed_work,
// queue_delayed_work_on, mod_delayed_work_on, try_to_grab_pending, workqueue_set_max_active,
// destroy_workqueue, current_work, current_is_workqueue_rescuer, workqueue_congested, work_busy,
// set_worker_desc. Flushing and cancelling are in Workqueue.Flush.cs, the rescuer in Workqueue.Rescuer.cs.
// See Documentation/workqueue.txt (v4.4; core-api/workqueue.rst today).
//
// Model: a workqueue is a name, flags and max_active over a set of pool_workqueues: one per possible CPU for a
// bound workqueue (into that CPU's normal or highpri pool), one per NUMA node for an unbound one (into the
// unbound pool for that node's CPUs; nodes whose CPUs are all of them share the default pwq). queue_work
// claims PENDING with test_and_set_bit, picks the pwq of the current CPU (or node), except that a work still
// running on some pool goes to that pool (non-reentrancy), then appends the work to the pool's worklist, or to
// the pwq's delayed list beyond max_active, and wakes a worker if the pool has nobody running. The fast path
// takes one lock and allocates nothing. The per-item paths here, in Worker.cs and in the pool are compiled
// optimized from their first call (AggressiveOptimization): tiered compilation would run them unoptimized until
// its background compiler caught up, which on a loaded machine takes seconds.
// Locking legend: I set at init; L pool.Lock; WQ Mutex (wq->mutex); PL WorkqueueSystem.PoolMutex;
// MD WorkqueueSystem.MaydayLock; WR WQ for writes, lock-free reads of a published array (RCU in the kernel).
// Differs: wq->mutex is a host lock (never held across a sleep here); a work going to delayed_works wakes no
// worker (see InsertWorkLocked), and workers are woken after pool.Lock is dropped. Later kernels make unbound +
// max_active 1 implicitly ordered (5c0338c68706) and allow overriding that (__WQ_ORDERED_EXPLICIT, v4.13), v4.4
// does not; unbound pwqs are per NUMA node as in v4.4 (affinity scopes, per-pod pwqs, arrived in v6.5/6.6, and
// max_active became system-wide in v6.9).
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>struct workqueue_struct: what subsystems queue work items on.</summary>
public sealed partial class Workqueue
{
    /// <summary>queue_work's CPU argument meaning "the CPU the caller runs on". WORK_CPU_UNBOUND.</summary>
    public const int WorkCpuUnbound = -1;

    private const int ENOENT = 2;
    private const int EAGAIN = 11;

    internal readonly Lock Mutex = new();          // wq->mutex
    internal readonly LockdepMap LockdepMap;       // I: the workqueue's pseudo-lock
    internal int SavedMaxActive;                   // WQ (read racily by flush_work's lockdep annotation)
    internal int NrPwqsToFlush;                    // atomic: flush in progress
    internal WqFlusher? FirstFlusher;              // WQ
    internal readonly List<WqFlusher> FlusherQueue = new();    // WQ: flushers waiting for their color
    internal readonly List<WqFlusher> FlusherOverflow = new(); // WQ: flushers waiting for a free color
    internal readonly List<PoolWorkqueue> Maydays = new();     // MD: pwqs asking the rescuer for help
    internal int WorkColor;                        // WQ: current work color
    internal int FlushColor;                       // WQ: current flush color
    internal int NrDrainers;                       // WQ
    internal Worker? RescuerWorker;                // MD: cleared by destroy_workqueue

    private readonly PoolWorkqueue?[]? _cpuPwqs;   // I: per CPU, bound workqueues only
    private readonly PoolWorkqueue?[]? _numaPwqTbl; // I: per node, unbound workqueues only
    private PoolWorkqueue? _dflPwq;                // WQ: unbound default pwq
    private PoolWorkqueue[] _pwqs = [];            // WR: every linked pwq
    private volatile int _flags;                   // WQ for writes; read on the queueing fast path
    private bool _destroyed;                       // WQ

    internal Workqueue(WorkqueueSystem system, string name, WqFlags flags, int maxActive, string? lockdepName)
    {
        System = system;
        Name = name;
        maxActive = maxActive == 0 ? WqLimits.DflActive : maxActive;
        maxActive = WqClampMaxActive(maxActive, flags);
        _flags = (int)flags;
        SavedMaxActive = maxActive;
        LockdepMap = new LockdepMap(lockdepName ?? $"\"{name}\"", reclaimFs: false);

        CpuLayout layout = system.Layout;
        if ((flags & WqFlags.Unbound) == 0)
        {
            _cpuPwqs = new PoolWorkqueue?[layout.NrCpuIds];
        }
        else
        {
            _numaPwqTbl = new PoolWorkqueue?[layout.NrNodes];
        }
    }

    /// <summary>The workqueue's name (also the rescuer's comm), e.g. "btrfs-flush_delalloc".</summary>
    public string Name { get; }

    /// <summary>The WQ_* flags.</summary>
    public WqFlags Flags => (WqFlags)_flags;

    /// <summary>saved_max_active: the max_active each pwq runs with (per CPU or per node), unless frozen.</summary>
    public int MaxActive => Volatile.Read(ref SavedMaxActive);

    /// <summary>The rescuer task of a WQ_MEM_RECLAIM workqueue (comm = the workqueue's name), else null.</summary>
    public EmuTask? Rescuer => RescuerWorker?.Task;

    /// <summary>The system the workqueue belongs to.</summary>
    public WorkqueueSystem System { get; }

    /// <summary>The lockdep class of the workqueue's pseudo-lock, e.g. "\"writeback\"".</summary>
    public LockClass LockClass => LockdepMap.Class;

    /// <inheritdoc />
    public override string ToString() => Name;

    // alloc_and_link_pwqs() and the rescuer: the second half of __alloc_workqueue_key, run by the system.
    internal void Init()
    {
        bool highpri = (Flags & WqFlags.Highpri) != 0;
        if ((Flags & WqFlags.Unbound) == 0)
        {
            foreach (int cpu in System.Layout.Cpus)
            {
                var pwq = new PoolWorkqueue(this, System.CpuWorkerPool(cpu, highpri), System.AllocPwqId());
                System.PublishPwq(pwq);
                _cpuPwqs![cpu] = pwq;
                lock (Mutex)
                {
                    LinkPwqLocked(pwq);
                }
            }
        }
        else
        {
            ApplyUnboundAttrs(highpri, noNuma: (Flags & WqFlags.Ordered) != 0);
        }

        if ((Flags & WqFlags.MemReclaim) != 0)
        {
            var rescuer = new Worker(null, 0) { RescueWq = this };
            var task = new EmuTask(Name, RescuerThread, parentPid: 2)
            {
                Flags = TaskFlags.Kthread,
                KthreadData = rescuer,
                WorkerHooks = rescuer,
            };
            rescuer.Task = task;
            RescuerWorker = rescuer;
            task.Start();
        }
    }

    // apply_workqueue_attrs() with the standard (or ordered, no_numa) attributes: a default pwq over every
    // CPU, and a pwq per node whose CPUs are not all of them.
    private void ApplyUnboundAttrs(bool highpri, bool noNuma)
    {
        CpuLayout layout = System.Layout;
        int[] all = layout.Cpus.ToArray();
        PoolWorkqueue dfl = System.AllocUnboundPwq(this, highpri, all);
        var tbl = new PoolWorkqueue[layout.NrNodes];
        for (int node = 0; node < layout.NrNodes; node++)
        {
            int[] nodeCpus = layout.NodeCpusArray(node);
            if (!noNuma && layout.NrNodes > 1 && nodeCpus.Length != all.Length)
            {
                tbl[node] = System.AllocUnboundPwq(this, highpri, nodeCpus);
            }
            else
            {
                using (dfl.Pool.Lock.EnterScope())
                {
                    dfl.Refcnt++;
                }

                tbl[node] = dfl;
            }
        }

        lock (Mutex)
        {
            for (int node = 0; node < tbl.Length; node++)
            {
                LinkPwqLocked(tbl[node]);
                Volatile.Write(ref _numaPwqTbl![node], tbl[node]);
            }

            LinkPwqLocked(dfl);
            _dflPwq = dfl;
        }
    }

    // link_pwq(): sync the pwq with the workqueue's color and max_active and publish it. Context: WQ.
    private void LinkPwqLocked(PoolWorkqueue pwq)
    {
        Debug.Assert(Mutex.IsHeldByCurrentThread, "wq->mutex must be held");
        if (pwq.Linked)
        {
            return;
        }

        pwq.WorkColor = WorkColor;
        pwq.PwqAdjustMaxActiveLocked();
        pwq.Linked = true;
        var pwqs = new PoolWorkqueue[_pwqs.Length + 1];
        _pwqs.CopyTo(pwqs, 0);
        pwqs[^1] = pwq;
        Volatile.Write(ref _pwqs, pwqs);
    }

    // The list_del_rcu(&pwq->pwqs_node) of pwq_unbound_release_workfn().
    internal void UnlinkPwq(PoolWorkqueue pwq)
    {
        lock (Mutex)
        {
            _pwqs = Array.FindAll(_pwqs, p => p != pwq);
            pwq.Linked = false;
        }
    }

    // for_each_pwq(): a snapshot; call with WQ held for a stable set.
    internal PoolWorkqueue[] Pwqs => Volatile.Read(ref _pwqs);

    // wq_clamp_max_active()
    private int WqClampMaxActive(int maxActive, WqFlags flags)
    {
        int lim = (flags & WqFlags.Unbound) != 0 ? WqLimits.UnboundMaxActive(System.Layout.NrCpus) : WqLimits.MaxActive;
        if (maxActive < 1 || maxActive > lim)
        {
            Klog.Printk($"workqueue: max_active {maxActive} requested for {Name} is out of range, clamping between 1 and {lim}");
        }

        return Math.Clamp(maxActive, 1, lim);
    }

    /// <summary>queue_work(): queues <paramref name="work"/> on the CPU the caller runs on (or its node).</summary>
    /// <returns>false if the work was already pending.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool QueueWork(WorkStruct work) => QueueWorkOn(WorkCpuUnbound, work);

    /// <summary>queue_work_on(): queues <paramref name="work"/> on <paramref name="cpu"/>'s pool (bound) or node (unbound).</summary>
    /// <returns>false if the work was already pending.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool QueueWorkOn(int cpu, WorkStruct work)
    {
        CheckQueueArgs(cpu, work);
        Sched.Point(SchedPoint.QueueWork);
        if (Bitops.TestAndSetBit(ref work.Data, WorkStruct.PendingBit))
        {
            return false;
        }

        __QueueWork(cpu, work);
        return true;
    }

    /// <summary>queue_delayed_work(): queues <paramref name="dwork"/> after <paramref name="delayMs"/> (0: now).</summary>
    /// <returns>false if the work was already pending.</returns>
    public bool QueueDelayedWork(DelayedWork dwork, long delayMs) => QueueDelayedWorkOn(WorkCpuUnbound, dwork, delayMs);

    /// <summary>queue_delayed_work_on().</summary>
    /// <returns>false if the work was already pending.</returns>
    public bool QueueDelayedWorkOn(int cpu, DelayedWork dwork, long delayMs)
    {
        CheckQueueArgs(cpu, dwork);
        ArgumentOutOfRangeException.ThrowIfNegative(delayMs);
        if (Bitops.TestAndSetBit(ref dwork.Data, WorkStruct.PendingBit))
        {
            return false;
        }

        __QueueDelayedWork(cpu, dwork, delayMs);
        return true;
    }

    /// <summary>mod_delayed_work(): like queue_delayed_work, but a pending work gets the new delay (0: run now).</summary>
    /// <returns>false if <paramref name="dwork"/> was idle and got queued, true if it was pending and re-timed.</returns>
    public bool ModDelayedWork(DelayedWork dwork, long delayMs) => ModDelayedWorkOn(WorkCpuUnbound, dwork, delayMs);

    /// <summary>mod_delayed_work_on().</summary>
    /// <returns>false if <paramref name="dwork"/> was idle and got queued, true if it was pending and re-timed.</returns>
    public bool ModDelayedWorkOn(int cpu, DelayedWork dwork, long delayMs)
    {
        CheckQueueArgs(cpu, dwork);
        ArgumentOutOfRangeException.ThrowIfNegative(delayMs);
        int ret;
        do
        {
            ret = TryToGrabPending(dwork, isDwork: true);
        }
        while (ret == -EAGAIN);

        if (ret >= 0)
        {
            __QueueDelayedWork(cpu, dwork, delayMs);
        }

        // -ENOENT (being cancelled) counts as "was pending".
        return ret != 0;
    }

    /// <summary>
    /// workqueue_set_max_active(): sets max_active (clamped to the limits), activating delayed items that now
    /// fit. Not for ordered workqueues (a WARN, ignored).
    /// </summary>
    public void WorkqueueSetMaxActive(int maxActive)
    {
        if ((Flags & WqFlags.Ordered) != 0)
        {
            System.Warn($"workqueue_set_max_active on ordered workqueue {Name}");
            return;
        }

        maxActive = WqClampMaxActive(maxActive, Flags);
        lock (Mutex)
        {
            Volatile.Write(ref SavedMaxActive, maxActive);
            foreach (PoolWorkqueue pwq in _pwqs)
            {
                pwq.PwqAdjustMaxActiveLocked();
            }
        }
    }

    /// <summary>workqueue_congested(): whether the pwq for <paramref name="cpu"/> has delayed items (advisory).</summary>
    public bool WorkqueueCongested(int cpu)
    {
        if (cpu == WorkCpuUnbound)
        {
            cpu = System.Layout.CurrentCpu();
        }

        PoolWorkqueue pwq = PwqFor(cpu);
        return !WorkList.Empty(pwq.DelayedWorks);
    }

    /// <summary>
    /// destroy_workqueue(): drains the workqueue (every pending item runs), stops its rescuer and releases its
    /// pool_workqueues. Sleeps; call from an emulated task.
    /// </summary>
    public void DestroyWorkqueue()
    {
        if (IsDestroyed)
        {
            System.Warn($"destroy_workqueue: {Name} destroyed twice");
            return;
        }

        DrainWorkqueue();

        Worker? rescuer;
        lock (System.MaydayLock)
        {
            rescuer = RescuerWorker;
            RescuerWorker = null; // prevents new maydays
        }

        if (rescuer is not null)
        {
            rescuer.StopRequested = true;
            rescuer.Task.KthreadStop(); // the rescuer empties its mayday list before exiting
        }

        lock (Mutex)
        {
            foreach (PoolWorkqueue pwq in _pwqs)
            {
                using (pwq.Pool.Lock.EnterScope())
                {
                    for (int color = 0; color < WorkStruct.NrColors; color++)
                    {
                        if (pwq.NrInFlight[color] != 0)
                        {
                            System.Warn($"destroy_workqueue: {Name} has {pwq.NrInFlight[color]} items in flight");
                            return;
                        }
                    }

                    if ((pwq != _dflPwq && pwq.Refcnt > 1) || pwq.NrActive != 0 || !WorkList.Empty(pwq.DelayedWorks))
                    {
                        System.Warn($"destroy_workqueue: {Name} is still busy");
                        return;
                    }
                }
            }

            _destroyed = true;
        }

        System.UnregisterWorkqueue(this);

        if (_cpuPwqs is not null)
        {
            // The base reference of per-cpu pwqs is never dropped: free them directly.
            foreach (PoolWorkqueue pwq in _pwqs)
            {
                System.FreePwqId(pwq);
            }
        }
        else
        {
            for (int node = 0; node < _numaPwqTbl!.Length; node++)
            {
                PoolWorkqueue? pwq = _numaPwqTbl[node];
                Volatile.Write(ref _numaPwqTbl[node], null);
                pwq?.PutPwqUnlocked();
            }

            PoolWorkqueue? dfl;
            lock (Mutex)
            {
                dfl = _dflPwq;
                _dflPwq = null;
            }

            dfl?.PutPwqUnlocked();
        }
    }

    /// <summary>Whether <see cref="DestroyWorkqueue"/> has drained the workqueue and is releasing (or has released) it.</summary>
    public bool IsDestroyed
    {
        get
        {
            lock (Mutex)
            {
                return _destroyed;
            }
        }
    }

    /// <summary>current_work(): the work the calling worker is running, or null off a worker.</summary>
    public static WorkStruct? CurrentWork() => Worker.CurrentWqWorker()?.CurrentWork;

    /// <summary>current_is_workqueue_rescuer().</summary>
    public static bool CurrentIsWorkqueueRescuer() => Worker.CurrentWqWorker()?.RescueWq is not null;

    /// <summary>
    /// set_worker_desc(): describes the running work for reports ("Workqueue: writeback wb_workfn
    /// (flush-btrfs-1)"); ignored off a worker. Cleared when the work returns.
    /// </summary>
    public static void SetWorkerDesc(string desc)
    {
        Worker? worker = Worker.CurrentWqWorker();
        if (worker is not null)
        {
            Volatile.Write(ref worker.Desc, desc);
        }
    }

    /// <summary>work_busy(): whether <paramref name="work"/> is pending and/or running (advisory).</summary>
    public static WorkBusyFlags WorkBusy(WorkStruct work)
    {
        WorkBusyFlags ret = work.Pending ? WorkBusyFlags.Pending : WorkBusyFlags.None;
        WorkerPool? pool = work.System?.GetWorkPool(work);
        if (pool is not null)
        {
            using (pool.Lock.EnterScope())
            {
                if (pool.FindWorkerExecutingWorkLocked(work) is not null)
                {
                    ret |= WorkBusyFlags.Running;
                }
            }
        }

        return ret;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckQueueArgs(int cpu, WorkStruct work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (cpu != WorkCpuUnbound && !System.Layout.IsPossible(cpu))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(cpu), $"CPU {cpu} is not a possible CPU");
        }

        WorkqueueSystem? owner = work.System;
        if (owner is not null && owner != System)
        {
            ThrowHelper.ThrowInvalidOperation($"work {work.FuncName} belongs to another WorkqueueSystem");
        }
    }

    // The pwq __queue_work() starts from: the CPU's for bound workqueues, the CPU's node's for unbound ones.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private PoolWorkqueue PwqFor(int cpu) =>
        _cpuPwqs is not null ? _cpuPwqs[cpu]! : Volatile.Read(ref _numaPwqTbl![System.Layout.CpuToNode(cpu)])!;

    // __queue_work(): the caller owns PENDING.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void __QueueWork(int cpu, WorkStruct work)
    {
        int reqCpu = cpu;
        if (work.System is null)
        {
            work.System = System;
        }

        // If draining, only work items from the same workqueue are allowed.
        if ((_flags & (int)WqFlags.Draining) != 0 && !IsChainedWork())
        {
            System.WarnOnce($"workqueue {Name}: queueing while draining from outside the workqueue");
            return;
        }

        if (System.ShutDown)
        {
            System.WarnOnce($"workqueue {Name}: queueing after WorkqueueSystem shutdown");
            return;
        }

        while (true)
        {
            PoolWorkqueue pwq;
            if (_numaPwqTbl is { Length: 1 } numaPwqTbl)
            {
                // unbound_pwq_by_node(wq, cpu_to_node(cpu)) with one node: no need to know the CPU.
                pwq = Volatile.Read(ref numaPwqTbl[0])!;
            }
            else
            {
                if (reqCpu == WorkCpuUnbound)
                {
                    cpu = System.Layout.CurrentCpu();
                }

                pwq = PwqFor(cpu);
            }

            // A work that last ran on another pool may still be running there: queue it there, so it runs
            // after that execution on the same worker (non-reentrancy).
            WorkerPool? lastPool = System.GetWorkPool(work);
            if (lastPool is not null && lastPool != pwq.Pool)
            {
                lastPool.Lock.Enter();
                Worker? worker = lastPool.FindWorkerExecutingWorkLocked(work);
                if (worker is not null && worker.CurrentPwq!.Wq == this)
                {
                    pwq = worker.CurrentPwq;
                }
                else
                {
                    lastPool.Lock.Exit();
                    pwq.Pool.Lock.Enter();
                }
            }
            else
            {
                pwq.Pool.Lock.Enter();
            }

            // An unbound pwq may have been released under us: pick again.
            if (pwq.Refcnt == 0)
            {
                if ((Flags & WqFlags.Unbound) != 0)
                {
                    pwq.Pool.Lock.Exit();
                    Thread.SpinWait(1);
                    continue;
                }

                System.WarnOnce($"workqueue: per-cpu pwq for {Name} on cpu{cpu} has 0 refcnt");
            }

            if (work.EntryNext != work)
            {
                pwq.Pool.Lock.Exit();
                System.Warn($"workqueue {Name}: work {work.FuncName} queued while on a list");
                return;
            }

            pwq.NrInFlight[pwq.WorkColor]++;
            pwq.Stats.Queued++;
            long workFlags = WorkStruct.ColorToFlags(pwq.WorkColor);
            WorkStruct worklist;
            if (pwq.NrActive < pwq.MaxActive)
            {
                pwq.NrActive++;
                worklist = pwq.Pool.Worklist;
            }
            else
            {
                workFlags |= WorkStruct.DelayedFlag;
                worklist = pwq.DelayedWorks;
            }

            EmuTask? toWake = InsertWorkLocked(pwq, work, worklist, workFlags, runnable: worklist == pwq.Pool.Worklist);
            pwq.Pool.Lock.Exit();
            if (toWake is not null)
            {
                Sched.WakeUpProcess(toWake);
            }

            return;
        }
    }

    // insert_work(): the caller owns the work; link it before pos. Returns the idle worker to wake, if nobody
    // is running, for the caller to wake once it has dropped the lock (see WorkerPool.WorkerToWakeLocked).
    // wq_worker_sleeping() takes pool.Lock in Emu, so the kernel's smp_mb() pairing with it is the lock.
    // Differs: v4.4 also wakes a worker for an item that goes to delayed_works; no worker can run that item,
    // and the items a worker could run woke one when they were queued, so Emu skips that wake-up (runnable
    // false), which in Emu may cost a futex round trip per queued item. Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static EmuTask? InsertWorkLocked(PoolWorkqueue pwq, WorkStruct work, WorkStruct pos, long extraFlags, bool runnable)
    {
        WorkerPool pool = pwq.Pool;
        pool.AssertLocked();
        Volatile.Write(ref work.Data, ((long)pwq.Id << WorkStruct.FlagBits) | WorkStruct.PendingFlag | WorkStruct.PwqFlag | extraFlags);
        WorkList.AddTail(work, pos);
        pwq.GetPwqLocked();

        return runnable && pool.NeedMoreWorkerUnlocked() ? pool.WorkerToWakeLocked() : null;
    }

    // is_chained_work(): is the caller a worker running an item of this workqueue?
    private bool IsChainedWork() => Worker.CurrentWqWorker()?.CurrentPwq?.Wq == this;

    // delayed_work_timer_fn(): the timer fired; queue the work (softirq context).
    internal static void DelayedWorkTimerFn(object? data)
    {
        var dwork = (DelayedWork)data!;
        dwork.Wq!.__QueueWork(dwork.Cpu, dwork);
    }

    // __queue_delayed_work(): the caller owns PENDING; delay 0 queues at once.
    private void __QueueDelayedWork(int cpu, DelayedWork dwork, long delayMs)
    {
        if (delayMs == 0)
        {
            __QueueWork(cpu, dwork);
            return;
        }

        dwork.System = System;
        dwork.Wq = this;
        dwork.Cpu = cpu;
        System.Timers.ModTimer(dwork.Timer, Environment.TickCount64 + delayMs);
    }

    // try_to_grab_pending(): takes PENDING from whatever state the work is in. Returns 1 if it was pending
    // (timer killed or work unlinked), 0 if it was idle, -EAGAIN if it is being queued right now (retry), -ENOENT
    // if someone is cancelling it. On >= 0 the caller owns PENDING and the work is on no list.
    internal static int TryToGrabPending(WorkStruct work, bool isDwork)
    {
        if (isDwork && work.System is { } owner && owner.Timers.DelTimer(((DelayedWork)work).Timer))
        {
            return 1; // the timer owned PENDING; now we do
        }

        if (!Bitops.TestAndSetBit(ref work.Data, WorkStruct.PendingBit))
        {
            return 0;
        }

        WorkqueueSystem? system = work.System;
        WorkerPool? pool = system?.GetWorkPool(work);
        if (pool is not null)
        {
            pool.Lock.Enter();
            // work->data points to a pwq only while queued on it, and both are changed under its pool lock,
            // so a pwq of the locked pool means the work is queued right here.
            PoolWorkqueue? pwq = system!.GetWorkPwq(work);
            if (pwq is not null && pwq.Pool == pool)
            {
                // A delayed work may have NO_COLOR barriers linked; activate it so they move with it.
                if ((Volatile.Read(ref work.Data) & WorkStruct.DelayedFlag) != 0)
                {
                    pwq.PwqActivateDelayedWorkLocked(work);
                }

                WorkList.DelInit(work);
                pwq.PwqDecNrInFlightLocked(WorkStruct.ColorOf(Volatile.Read(ref work.Data)));
                Volatile.Write(ref work.Data, ((long)pool.Id << WorkStruct.OffqPoolShift) | WorkStruct.PendingFlag);
                pool.Lock.Exit();
                return 1;
            }

            pool.Lock.Exit();
        }

        if (WorkIsCanceling(work))
        {
            return -ENOENT;
        }

        Thread.SpinWait(20); // someone is queueing it: let them finish
        return -EAGAIN;
    }

    // work_is_canceling()
    private static bool WorkIsCanceling(WorkStruct work)
    {
        long data = Volatile.Read(ref work.Data);
        return (data & WorkStruct.PwqFlag) == 0 && (data & WorkStruct.OffqCanceling) != 0;
    }

    // get_work_pool_id()
    private static int GetWorkPoolId(WorkStruct work)
    {
        long data = Volatile.Read(ref work.Data);
        if ((data & WorkStruct.PwqFlag) != 0)
        {
            return work.System!.GetWorkPwq(work)!.Pool.Id;
        }

        return (int)(data >> WorkStruct.OffqPoolShift);
    }

    // set_work_pool_and_clear_pending(): with a full barrier, see process_one_work.
    private static void SetWorkPoolAndClearPending(WorkStruct work, int poolId) =>
        Interlocked.Exchange(ref work.Data, (long)poolId << WorkStruct.OffqPoolShift);
}

/// <summary>work_busy() result bits (WORK_BUSY_*).</summary>
[Flags]
public enum WorkBusyFlags
{
    /// <summary>Neither pending nor running.</summary>
    None = 0,

    /// <summary>Queued, not yet started. WORK_BUSY_PENDING.</summary>
    Pending = 1 << 0,

    /// <summary>A worker is running it. WORK_BUSY_RUNNING.</summary>
    Running = 1 << 1,
}
