// Mirrors: kernel/workqueue.c (v4.4) struct worker_pool and the pool side of cmwq: the concurrency policy
// (need_more_worker, may_start_working, keep_working, need_to_create_worker, too_many_workers), the idle list,
// create_worker / destroy_worker, idle_worker_timeout, pool_mayday_timeout, maybe_create_worker and
// manage_workers, worker_attach_to_pool / worker_detach_from_pool.
//
// Model: a pool is a worklist shared by all workqueues whose pool_workqueues point at it, plus the workers
// serving it: per-CPU pools (normal and highpri, kworker/N:M and N:MH) whose running workers are counted in
// nr_running by schedule() (concurrency management), and unbound pools per NUMA node (kworker/uP:M) whose
// workers carry WORKER_UNBOUND and are never counted, so every queued item wakes a worker. A worker that finds
// no idle worker left becomes the manager and creates one before it starts working, so a pool always keeps an
// idle worker in reserve; when creation keeps failing the mayday timer summons the rescuers of the workqueues
// with items on the worklist. Idle workers beyond two are reaped after IdleWorkerTimeoutMs.
// Locking legend: I set at init; L pool.Lock (spin_lock_irq(&pool->lock)); A AttachLock (attach_mutex);
// PL WorkqueueSystem.PoolMutex (wq_pool_mutex); MD WorkqueueSystem.MaydayLock (wq_mayday_lock).
// Differs: v4.4 elects the manager with mutex_trylock(&pool->manager_arb); Emu uses POOL_MANAGER_ACTIVE as
// kernels since v4.15 do. wq_worker_sleeping takes pool.Lock (as since v5.1) instead of relying on running on
// the pool's CPU. On the hot paths (queueing, starting a work, a worker going to sleep) the idle worker is
// woken after pool.Lock is dropped, not under it (WorkerToWakeLocked). Emu adds POOL_DYING for WorkqueueSystem
// shutdown and a creation gate for fault injection.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu.Kernel;

/// <summary>struct worker_pool: a worklist and the kworkers serving it.</summary>
public sealed class WorkerPool
{
    internal const uint PoolManagerActive = 1 << 0;  // POOL_MANAGER_ACTIVE: a worker is creating workers
    internal const uint PoolDisassociated = 1 << 2;  // POOL_DISASSOCIATED: not bound to a CPU (all unbound pools)
    internal const uint PoolDying = 1 << 3;          // Emu: the WorkqueueSystem is shutting down
    internal const int MaxIdleWorkersRatio = 4;      // MAX_IDLE_WORKERS_RATIO: 1/4 of busy can be idle

    internal Spinlock Lock = new();                   // pool->lock
    internal readonly Lock AttachLock = new();        // attach_mutex
    internal readonly WorkStruct Worklist = new();    // L: pending work items
    internal readonly LinkedList<Worker> IdleList = new(); // L: idle workers, most recently idle first
    internal readonly TimerList IdleTimer;            // L: reaps idle workers
    internal readonly TimerList MaydayTimer;          // L: calls the rescuers when worker creation stalls
    internal readonly List<Worker> Workers = new();   // A: attached workers
    internal uint Flags;                              // L
    internal int NrWorkers;                           // L
    internal int NrIdle;                              // L
    internal Worker? Manager;                         // L: informational
    internal Completion? DetachCompletion;            // A: completed when the last worker detaches
    internal int Refcnt = 1;                          // PL: unbound pools are shared by attributes

    private readonly int[] _cpumask;                  // I: attrs->cpumask
    private readonly Lock _idaLock = new();           // worker_ida's own lock
    private readonly List<bool> _ida = new();         // _idaLock: worker ids in use
    private Worker[] _busy = new Worker[8];           // L: busy_hash (few entries: scanned)
    private int _nrBusy;                              // L
    private PaddedCounter _nrRunning;                 // atomic, on its own cache line: written on every sleep

    internal WorkerPool(WorkqueueSystem system, int id, int cpu, int node, int[] cpumask, bool highpri)
    {
        System = system;
        Id = id;
        Cpu = cpu;
        Node = node;
        _cpumask = cpumask;
        Highpri = highpri;
        Flags = cpu < 0 ? PoolDisassociated : 0;
        IdleTimer = new TimerList(s_idleWorkerTimeout, this);
        MaydayTimer = new TimerList(s_poolMaydayTimeout, this);
    }

    private static readonly TimerFunc s_idleWorkerTimeout = static data => ((WorkerPool)data!).IdleWorkerTimeout();
    private static readonly TimerFunc s_poolMaydayTimeout = static data => ((WorkerPool)data!).PoolMaydayTimeout();

    /// <summary>The pool's id (worker_pool_idr): per-CPU pools first, 2 per CPU, then unbound pools.</summary>
    public int Id { get; }

    /// <summary>The CPU of a per-CPU pool; -1 for an unbound pool.</summary>
    public int Cpu { get; }

    /// <summary>The NUMA node the pool's CPUs belong to; -1 (NUMA_NO_NODE) when they span nodes.</summary>
    public int Node { get; }

    /// <summary>Serves WQ_HIGHPRI workqueues (attrs->nice &lt; 0).</summary>
    public bool Highpri { get; }

    /// <summary>The CPUs the pool's workers may run on (attrs->cpumask).</summary>
    public IReadOnlyList<int> Cpus => _cpumask;

    /// <summary>Number of workers (busy and idle).</summary>
    public int NrWorkersSnapshot
    {
        get
        {
            using (Lock.EnterScope())
            {
                return NrWorkers;
            }
        }
    }

    /// <summary>Number of idle workers.</summary>
    public int NrIdleSnapshot
    {
        get
        {
            using (Lock.EnterScope())
            {
                return NrIdle;
            }
        }
    }

    /// <summary>nr_running: workers of a per-CPU pool that are running a work item and not asleep.</summary>
    public int NrRunning => Volatile.Read(ref _nrRunning.Value);

    internal WorkqueueSystem System { get; }

    internal int[] Cpumask => _cpumask;

    /// <summary>The tasks of the pool's workers, in attach order.</summary>
    public EmuTask[] WorkerTasks()
    {
        lock (AttachLock)
        {
            var tasks = new EmuTask[Workers.Count];
            for (int i = 0; i < tasks.Length; i++)
            {
                tasks[i] = Workers[i].Task;
            }

            return tasks;
        }
    }

    /// <inheritdoc />
    public override string ToString() =>
        Cpu >= 0 ? $"pool {Id} cpu={Cpu}{(Highpri ? " highpri" : "")}" : $"pool {Id} node={Node} cpus={string.Join(',', _cpumask)}";

    internal ref int NrRunningRef => ref _nrRunning.Value;

    // lockdep_assert_held(&pool->lock)
    [Conditional("DEBUG")]
    internal void AssertLocked() => Debug.Assert(Lock.IsHeldByCurrentThread, "pool.Lock must be held");

    // __need_more_worker()
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool NeedMoreWorkerUnlocked() => Volatile.Read(ref _nrRunning.Value) == 0;

    // need_more_worker(): work pending and nobody running it. Always true with work pending for unbound pools.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool NeedMoreWorker() => !WorkList.Empty(Worklist) && NeedMoreWorkerUnlocked();

    // may_start_working(): an idle worker is in reserve for the manager role.
    internal bool MayStartWorking() => NrIdle != 0;

    // keep_working(): called by running workers.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool KeepWorking() => !WorkList.Empty(Worklist) && Volatile.Read(ref _nrRunning.Value) <= 1;

    // need_to_create_worker(): called by the manager, also racily without the lock as the kernel does.
    internal bool NeedToCreateWorker() => NeedMoreWorker() && !MayStartWorking();

    // too_many_workers(): more than two idle and idle - 2 at least a quarter of busy.
    internal bool TooManyWorkers()
    {
        bool managing = (Flags & PoolManagerActive) != 0;
        int nrIdle = NrIdle + (managing ? 1 : 0); // the manager counts as idle
        int nrBusy = NrWorkers - nrIdle;
        return nrIdle > 2 && (nrIdle - 2) * MaxIdleWorkersRatio >= nrBusy;
    }

    // first_idle_worker()
    internal Worker? FirstIdleWorker() => IdleList.First?.Value;

    // wake_up_worker(): wakes the most recently idle worker. Context: L.
    internal void WakeUpWorkerLocked()
    {
        AssertLocked();
        Worker? worker = FirstIdleWorker();
        if (worker is not null)
        {
            Sched.WakeUpProcess(worker.Task);
        }
    }

    // The task wake_up_worker() would wake, for the hot paths that wake it after dropping pool.Lock: waking a
    // worker that has meanwhile started running does nothing, and one that went idle again rechecks the pool,
    // so the late wake-up loses nothing - while a wake-up under the lock may be a futex call that every
    // queuer and worker of the pool would wait for. Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal EmuTask? WorkerToWakeLocked()
    {
        AssertLocked();
        return FirstIdleWorker()?.Task;
    }

    // find_worker_executing_work(): the worker running this very work with this very function, if any. Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal Worker? FindWorkerExecutingWorkLocked(WorkStruct work)
    {
        AssertLocked();
        WorkFunc func = work.Func;
        Worker[] busy = _busy;
        for (int i = 0; i < _nrBusy; i++)
        {
            Worker worker = busy[i];
            if (worker.CurrentWork == work && worker.CurrentFunc == func)
            {
                return worker;
            }
        }

        return null;
    }

    // hash_add(pool->busy_hash, ...). Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void BusyAddLocked(Worker worker)
    {
        AssertLocked();
        if (_nrBusy == _busy.Length)
        {
            Array.Resize(ref _busy, _busy.Length * 2);
        }

        worker.BusyIndex = _nrBusy;
        _busy[_nrBusy++] = worker;
    }

    // hash_del(&worker->hentry). Context: L.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void BusyRemoveLocked(Worker worker)
    {
        AssertLocked();
        int i = worker.BusyIndex;
        Worker last = _busy[--_nrBusy];
        _busy[i] = last;
        last.BusyIndex = i;
        _busy[_nrBusy] = null!;
        worker.BusyIndex = -1;
    }

    // worker_enter_idle(). Context: L.
    internal void WorkerEnterIdleLocked(Worker worker)
    {
        AssertLocked();
        if ((worker.Flags & Worker.WorkerIdle) != 0 || worker.IdleNode.List is not null || worker.BusyIndex >= 0)
        {
            System.WarnOnce("worker_enter_idle: worker already idle or busy");
            return;
        }

        worker.Flags |= Worker.WorkerIdle;
        NrIdle++;
        worker.LastActiveMs = Environment.TickCount64;
        IdleList.AddFirst(worker.IdleNode);

        if (TooManyWorkers() && !IdleTimer.TimerPending)
        {
            System.Timers.ModTimer(IdleTimer, Environment.TickCount64 + System.Config.IdleWorkerTimeoutMs);
        }

        if ((Flags & PoolDisassociated) == 0 && NrWorkers == NrIdle && NrRunning != 0)
        {
            System.WarnOnce($"worker_enter_idle: {this} has nr_running {NrRunning} with every worker idle");
        }
    }

    // worker_leave_idle(). Context: L.
    internal void WorkerLeaveIdleLocked(Worker worker)
    {
        AssertLocked();
        if ((worker.Flags & Worker.WorkerIdle) == 0)
        {
            System.WarnOnce("worker_leave_idle: worker not idle");
            return;
        }

        worker.WorkerClrFlagsLocked(Worker.WorkerIdle);
        NrIdle--;
        IdleList.Remove(worker.IdleNode);
    }

    // create_worker(): creates and starts a worker, attached to the pool and idle. Returns null on failure
    // (failed kthread_create; in Emu: the system's creation gate is closed). Context: may sleep; not L.
    internal Worker? CreateWorker()
    {
        if (System.ShutDown)
        {
            return null;
        }

        int id = IdaGet();
        if (System.FailWorkerCreation)
        {
            IdaRemove(id);
            System.NoteWorkerCreationFailure();
            return null;
        }

        var worker = new Worker(this, id);
        string name = Cpu >= 0 ? $"kworker/{Cpu}:{id}{(Highpri ? "H" : "")}" : $"kworker/u{Id}:{id}";
        var task = new EmuTask(name, worker.WorkerThread, parentPid: 2)
        {
            Flags = TaskFlags.Kthread,
            KthreadData = worker,
            WorkerHooks = worker,
            AllowedCpus = System.Config.PinWorkers ? _cpumask : null,
        };
        worker.Task = task;

        WorkerAttachToPool(worker);

        using (Lock.EnterScope())
        {
            NrWorkers++;
            WorkerEnterIdleLocked(worker);
        }

        task.Start(); // wake_up_process(): the worker leaves idle itself if there is work
        return worker;
    }

    // destroy_worker(): tells an idle worker to exit. Context: L.
    internal void DestroyWorkerLocked(Worker worker)
    {
        AssertLocked();
        if (worker.CurrentWork is not null || !WorkList.Empty(worker.Scheduled) || (worker.Flags & Worker.WorkerIdle) == 0)
        {
            System.WarnOnce("destroy_worker: worker is not idle");
            return;
        }

        NrWorkers--;
        NrIdle--;
        IdleList.Remove(worker.IdleNode);
        worker.Flags |= Worker.WorkerDie;
        Sched.WakeUpProcess(worker.Task);
    }

    // worker_attach_to_pool(): the worker follows the pool's CPU binding; on a disassociated (unbound) pool it
    // is WORKER_UNBOUND, outside concurrency management.
    internal void WorkerAttachToPool(Worker worker)
    {
        lock (AttachLock)
        {
            if (worker.RescueWq is not null && EmuTask.Current == worker.Task && System.Config.PinWorkers)
            {
                worker.PinSelf(_cpumask); // set_cpus_allowed_ptr() for the rescuer moving between pools
            }

            if ((Flags & PoolDisassociated) != 0)
            {
                worker.Flags |= Worker.WorkerUnbound;
            }

            Workers.Add(worker);
        }
    }

    // worker_detach_from_pool().
    internal void WorkerDetachFromPool(Worker worker)
    {
        Completion? detachCompletion = null;
        lock (AttachLock)
        {
            Workers.Remove(worker);
            if (Workers.Count == 0)
            {
                detachCompletion = DetachCompletion;
            }
        }

        worker.Flags &= ~(Worker.WorkerUnbound | Worker.WorkerRebound);
        detachCompletion?.Complete();
    }

    // manage_workers(): become the manager unless someone is, and make sure an idle worker exists. Returns
    // whether management was performed (the caller's checks may be stale). Context: L, dropped and retaken.
    internal bool ManageWorkersLocked(Worker worker)
    {
        AssertLocked();
        if ((Flags & PoolManagerActive) != 0)
        {
            return false;
        }

        Flags |= PoolManagerActive;
        Manager = worker;

        MaybeCreateWorkerLocked();

        Manager = null;
        Flags &= ~PoolManagerActive;
        Wait.WakeUp(System.ManagerWait);
        return true;
    }

    // maybe_create_worker(): retries every CREATE_COOLDOWN until a worker exists; if that takes longer than
    // MAYDAY_INITIAL_TIMEOUT the mayday timer calls the rescuers. Context: L, dropped and retaken.
    private void MaybeCreateWorkerLocked()
    {
        WorkqueueConfig config = System.Config;
        while (true)
        {
            Lock.Exit();
            System.Timers.ModTimer(MaydayTimer, Environment.TickCount64 + config.MaydayInitialTimeoutMs);

            while (true)
            {
                if (CreateWorker() is not null || !NeedToCreateWorker() || IsDying)
                {
                    break;
                }

                using (KFunc.Enter("maybe_create_worker"))
                {
                    Sched.ScheduleTimeoutInterruptible(config.CreateCooldownMs);
                }

                if (!NeedToCreateWorker() || IsDying)
                {
                    break;
                }
            }

            System.Timers.DelTimerSync(MaydayTimer);
            Lock.Enter();
            // The lock was dropped: a worker just created may already be busy.
            if (!NeedToCreateWorker() || (Flags & PoolDying) != 0)
            {
                return;
            }
        }
    }

    private bool IsDying => (Volatile.Read(ref Flags) & PoolDying) != 0;

    // idle_worker_timeout(): reaps the least recently idle workers while there are too many. Timer context.
    private void IdleWorkerTimeout()
    {
        using (Lock.EnterScope())
        {
            while (TooManyWorkers())
            {
                Worker worker = IdleList.Last!.Value;
                long expires = worker.LastActiveMs + System.Config.IdleWorkerTimeoutMs;
                if (Environment.TickCount64 < expires)
                {
                    System.Timers.ModTimer(IdleTimer, expires);
                    break;
                }

                DestroyWorkerLocked(worker);
            }
        }
    }

    // pool_mayday_timeout(): worker creation has stalled; ask the rescuer of every workqueue with an item on
    // the worklist for help, and look again after MAYDAY_INTERVAL. Timer context.
    private void PoolMaydayTimeout()
    {
        using (Lock.EnterScope())
        {
            lock (System.MaydayLock)
            {
                if (NeedToCreateWorker())
                {
                    for (WorkStruct work = Worklist.EntryNext; work != Worklist; work = work.EntryNext)
                    {
                        Workqueue.SendMaydayLocked(System, work);
                    }
                }
            }
        }

        System.Timers.ModTimer(MaydayTimer, Environment.TickCount64 + System.Config.MaydayIntervalMs);
    }

    // ida_simple_get(): the lowest free worker id.
    private int IdaGet()
    {
        lock (_idaLock)
        {
            int id = _ida.IndexOf(false);
            if (id < 0)
            {
                id = _ida.Count;
                _ida.Add(true);
            }
            else
            {
                _ida[id] = true;
            }

            return id;
        }
    }

    // ida_simple_remove()
    internal void IdaRemove(int id)
    {
        lock (_idaLock)
        {
            _ida[id] = false;
        }
    }

    // An int alone on its cache line (____cacheline_aligned_in_smp), so nr_running updates on every worker
    // sleep do not false-share with the worklist and the lock.
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct PaddedCounter
    {
        [FieldOffset(64)]
        public int Value;
    }
}
