// Mirrors: kernel/workqueue.c (v4.4) the subsystem-wide state: cpu_worker_pools, worker_pool_idr,
// unbound_pool_hash with get_unbound_pool / put_unbound_pool, the workqueues list, wq_pool_mutex,
// wq_mayday_lock, wq_manager_wait, freeze_workqueues_begin / freeze_workqueues_busy / thaw_workqueues,
// init_workqueues with the system workqueues, __alloc_workqueue_key's registration, show_workqueue_state.
//
// Model: one WorkqueueSystem is one kernel's workqueue subsystem laid over a CpuLayout: two pools per CPU
// (ids 0, 1 for CPU 0, then 2, 3, ...), each started with one worker, then the unbound pools, shared by every
// unbound workqueue with the same attributes (priority and CPU mask), created with the system workqueues
// (events, events_highpri, events_long, events_unbound, events_freezable). It owns every pool, worker and
// timer, and Dispose stops them, so tests create and dispose their own. Work items queued on it hold ids that
// only it resolves (see WorkStruct.cs).
// Locking legend: I set at init; PL PoolMutex (wq_pool_mutex); MD MaydayLock (wq_mayday_lock); L pool.Lock.
// Differs: wq_pool_mutex is a host lock, never held across a sleep (put_unbound_pool waits after dropping it).
// Emu adds a creation gate (FailWorkerCreation) that makes create_worker() fail, as it can under memory
// pressure, and a shutdown that the kernel never needs.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Runtime.CompilerServices;
using Emu.Interop;

namespace Emu.Kernel;

/// <summary>Tunables of a <see cref="WorkqueueSystem"/> (the kernel's compile-time constants, in ms).</summary>
public sealed record WorkqueueConfig
{
    /// <summary>Idle workers beyond two are reaped after this long. IDLE_WORKER_TIMEOUT (300 s).</summary>
    public long IdleWorkerTimeoutMs { get; init; } = 300_000;

    /// <summary>A manager that has not created a worker after this long calls the rescuers. MAYDAY_INITIAL_TIMEOUT.</summary>
    public long MaydayInitialTimeoutMs { get; init; } = 10;

    /// <summary>Then it calls them again this often. MAYDAY_INTERVAL.</summary>
    public long MaydayIntervalMs { get; init; } = 100;

    /// <summary>Pause between failed worker creations. CREATE_COOLDOWN (1 s).</summary>
    public long CreateCooldownMs { get; init; } = 1000;

    /// <summary>Pin workers to their pool's CPUs (bound: the CPU; unbound: the node's CPUs).</summary>
    public bool PinWorkers { get; init; } = true;

    /// <summary>How long an idle worker spins (in 16-pause steps) before it sleeps; 0 sleeps at once.</summary>
    public int IdleSpinIterations { get; init; } = 64;

    /// <summary>How long <see cref="WorkqueueSystem.Dispose"/> waits for workers to exit, in total.</summary>
    public int ShutdownTimeoutMs { get; init; } = 5000;
}

/// <summary>A workqueue subsystem: its pools, workers, timers and system workqueues.</summary>
public sealed class WorkqueueSystem : IDisposable
{
    /// <summary>WQ_NAME_LEN: names are truncated to one less.</summary>
    public const int WqNameLen = 24;

    internal readonly Lock PoolMutex = new();              // wq_pool_mutex
    internal readonly Lock MaydayLock = new();             // wq_mayday_lock
    internal readonly WaitQueueHead ManagerWait = new();   // wq_manager_wait
    internal bool WorkqueueFreezing;                       // PL for writes; read under pool locks

    private readonly WorkerPool[][] _cpuPools;             // I: [cpu][0 normal, 1 highpri]
    private readonly Idr<WorkerPool> _poolIdr = new();     // worker_pool_idr
    private readonly Idr<PoolWorkqueue> _pwqIdr = new();   // what work->data's pwq "pointer" indexes
    private readonly List<WorkerPool> _unboundPools = new(); // PL: unbound_pool_hash
    private readonly List<Workqueue> _workqueues = new();  // PL
    private readonly ConcurrentDictionary<string, byte> _warnedOnce = new();
    private volatile bool _failWorkerCreation;
    private volatile bool _shutDown;
    private long _workerCreationFailures;
    private long _warnings;

    /// <summary>init_workqueues(): creates the per-CPU pools with one worker each and the system workqueues.</summary>
    /// <param name="layout">CPUs and nodes; the machine's (from the shim's topology) when null.</param>
    /// <param name="config">Tunables; the kernel's values when null.</param>
    public WorkqueueSystem(CpuLayout? layout = null, WorkqueueConfig? config = null)
    {
        Layout = layout ?? CpuLayout.FromTopology(Topology.Read());
        Config = config ?? new WorkqueueConfig();
        Timers = new TimerBase(Config.PinWorkers ? Layout.Cpus : null);

        _cpuPools = new WorkerPool[Layout.NrCpuIds][];
        foreach (int cpu in Layout.Cpus)
        {
            _cpuPools[cpu] = new WorkerPool[2];
            for (int highpri = 0; highpri < 2; highpri++)
            {
                int id = _poolIdr.Alloc();
                var pool = new WorkerPool(this, id, cpu, Layout.CpuToNode(cpu), [cpu], highpri == 1);
                _poolIdr.Publish(id, pool);
                _cpuPools[cpu][highpri] = pool;
            }
        }

        foreach (int cpu in Layout.Cpus)
        {
            foreach (WorkerPool pool in _cpuPools[cpu])
            {
                if (pool.CreateWorker() is null)
                {
                    throw new InvalidOperationException($"init_workqueues: cannot create the first worker of {pool}");
                }
            }
        }

        SystemWq = AllocWorkqueue("events", WqFlags.None, 0);
        SystemHighpriWq = AllocWorkqueue("events_highpri", WqFlags.Highpri, 0);
        SystemLongWq = AllocWorkqueue("events_long", WqFlags.None, 0);
        SystemUnboundWq = AllocWorkqueue("events_unbound", WqFlags.Unbound, WqLimits.UnboundMaxActive(Layout.NrCpus));
        SystemFreezableWq = AllocWorkqueue("events_freezable", WqFlags.Freezable, 0);
        WqMetrics.Register(this);
    }

    /// <summary>The CPUs and nodes the pools are laid over.</summary>
    public CpuLayout Layout { get; }

    /// <summary>The tunables.</summary>
    public WorkqueueConfig Config { get; }

    /// <summary>system_wq ("events"): bound, for short items.</summary>
    public Workqueue SystemWq { get; }

    /// <summary>system_highpri_wq ("events_highpri").</summary>
    public Workqueue SystemHighpriWq { get; }

    /// <summary>system_long_wq ("events_long"): bound, for items that may run long.</summary>
    public Workqueue SystemLongWq { get; }

    /// <summary>system_unbound_wq ("events_unbound").</summary>
    public Workqueue SystemUnboundWq { get; }

    /// <summary>system_freezable_wq ("events_freezable").</summary>
    public Workqueue SystemFreezableWq { get; }

    /// <summary>
    /// Fault injection: while true, create_worker() fails (as a failed kthread_create would), so pools cannot
    /// grow and WQ_MEM_RECLAIM workqueues must be rescued.
    /// </summary>
    public bool FailWorkerCreation
    {
        get => _failWorkerCreation;
        set => _failWorkerCreation = value;
    }

    /// <summary>How many create_worker() calls have failed.</summary>
    public long WorkerCreationFailures => Interlocked.Read(ref _workerCreationFailures);

    /// <summary>How many workqueue WARNings have been printed.</summary>
    public long Warnings => Interlocked.Read(ref _warnings);

    /// <summary>The softirq task running the timers (delayed works, idle reaping, mayday).</summary>
    public EmuTask TimerTask => Timers.Task;

    internal TimerBase Timers { get; }

    internal bool ShutDown => _shutDown;

    /// <summary>alloc_workqueue(): a new workqueue.</summary>
    /// <param name="name">Its name (truncated to 23 characters); also its rescuer's comm.</param>
    /// <param name="flags">WQ_* flags.</param>
    /// <param name="maxActive">Active items per pwq (per CPU, or per node if unbound); 0 for the default 256.</param>
    /// <param name="lockdepName">
    /// Lockdep name of its pseudo-lock as alloc_workqueue stringifies its format and arguments; defaults to the
    /// quoted name ("\"writeback\""); btrfs uses "\"%s-%s\"\"btrfs\", name".
    /// </param>
    /// <exception cref="InvalidOperationException">An unbound pool could not get its first worker.</exception>
    public Workqueue AllocWorkqueue(string name, WqFlags flags, int maxActive, string? lockdepName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfNegative(maxActive);
        if ((flags & WqFlags.Ordered) != 0 && maxActive != 1)
        {
            throw new ArgumentException("__WQ_ORDERED needs max_active 1; use AllocOrderedWorkqueue", nameof(flags));
        }

        ObjectDisposedException.ThrowIf(_shutDown, this);
        if (name.Length >= WqNameLen)
        {
            name = name[..(WqNameLen - 1)];
        }

        var wq = new Workqueue(this, name, flags & ~WqFlags.Draining, maxActive, lockdepName);
        wq.Init();

        // wq_pool_mutex protects the freeze state and the list: adjust max_active and add the workqueue.
        lock (PoolMutex)
        {
            lock (wq.Mutex)
            {
                foreach (PoolWorkqueue pwq in wq.Pwqs)
                {
                    pwq.PwqAdjustMaxActiveLocked();
                }
            }

            _workqueues.Add(wq);
        }

        return wq;
    }

    /// <summary>alloc_ordered_workqueue(): unbound, one pwq, max_active 1: items run one at a time in queueing order.</summary>
    public Workqueue AllocOrderedWorkqueue(string name, WqFlags flags = WqFlags.None, string? lockdepName = null) =>
        AllocWorkqueue(name, WqFlags.Unbound | WqFlags.Ordered | flags, 1, lockdepName);

    /// <summary>schedule_work(): queue_work on system_wq.</summary>
    public bool ScheduleWork(WorkStruct work) => SystemWq.QueueWork(work);

    /// <summary>schedule_work_on().</summary>
    public bool ScheduleWorkOn(int cpu, WorkStruct work) => SystemWq.QueueWorkOn(cpu, work);

    /// <summary>schedule_delayed_work().</summary>
    public bool ScheduleDelayedWork(DelayedWork dwork, long delayMs) => SystemWq.QueueDelayedWork(dwork, delayMs);

    /// <summary>The normal (or highpri) pool of <paramref name="cpu"/>.</summary>
    public WorkerPool CpuWorkerPool(int cpu, bool highpri)
    {
        if (!Layout.IsPossible(cpu))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(cpu), $"CPU {cpu} is not a possible CPU");
        }

        return _cpuPools[cpu][highpri ? 1 : 0];
    }

    /// <summary>Every live pool, by id (for_each_pool).</summary>
    public WorkerPool[] Pools() => _poolIdr.Snapshot();

    /// <summary>Every live workqueue, in creation order.</summary>
    public Workqueue[] Workqueues()
    {
        lock (PoolMutex)
        {
            return _workqueues.ToArray();
        }
    }

    /// <summary>freeze_workqueues_begin(): freezable workqueues stop activating items (max_active 0).</summary>
    public void FreezeWorkqueuesBegin()
    {
        lock (PoolMutex)
        {
            if (WorkqueueFreezing)
            {
                Warn("freeze_workqueues_begin: already freezing");
            }

            Volatile.Write(ref WorkqueueFreezing, true);
            AdjustAllMaxActiveLocked();
        }
    }

    /// <summary>freeze_workqueues_busy(): whether a freezable workqueue still has active items.</summary>
    public bool FreezeWorkqueuesBusy()
    {
        lock (PoolMutex)
        {
            foreach (Workqueue wq in _workqueues)
            {
                if ((wq.Flags & WqFlags.Freezable) == 0)
                {
                    continue;
                }

                foreach (PoolWorkqueue pwq in wq.Pwqs)
                {
                    if (Volatile.Read(ref pwq.NrActive) != 0)
                    {
                        return true;
                    }
                }
            }

            return false;
        }
    }

    /// <summary>thaw_workqueues(): restores max_active and activates what was held back.</summary>
    public void ThawWorkqueues()
    {
        lock (PoolMutex)
        {
            if (!WorkqueueFreezing)
            {
                return;
            }

            Volatile.Write(ref WorkqueueFreezing, false);
            AdjustAllMaxActiveLocked();
        }
    }

    /// <summary>
    /// show_workqueue_state() (sysrq-t): prints the busy workqueues, their in-flight, pending and delayed items,
    /// and the busy pools with their idle workers.
    /// </summary>
    public void ShowWorkqueueState()
    {
        Klog.Printk("Showing busy workqueues and worker pools:");
        foreach (Workqueue wq in Workqueues())
        {
            PoolWorkqueue[] pwqs = wq.Pwqs;
            bool idle = true;
            foreach (PoolWorkqueue pwq in pwqs)
            {
                using (pwq.Pool.Lock.EnterScope())
                {
                    idle &= pwq.NrActive == 0 && WorkList.Empty(pwq.DelayedWorks);
                }
            }

            if (idle)
            {
                continue;
            }

            Klog.Printk($"workqueue {wq.Name}: flags=0x{(uint)wq.Flags:x}");
            foreach (PoolWorkqueue pwq in pwqs)
            {
                using (pwq.Pool.Lock.EnterScope())
                {
                    if (pwq.NrActive != 0 || !WorkList.Empty(pwq.DelayedWorks))
                    {
                        ShowPwqLocked(pwq);
                    }
                }
            }
        }

        foreach (WorkerPool pool in Pools())
        {
            using (pool.Lock.EnterScope())
            {
                if (pool.NrWorkers == pool.NrIdle)
                {
                    continue;
                }

                var sb = new StringBuilder();
                sb.Append("pool ").Append(pool.Id).Append(':').Append(PoolInfo(pool)).Append(" workers=").Append(pool.NrWorkers);
                if (pool.Manager is not null)
                {
                    sb.Append(" manager: ").Append(pool.Manager.Task.Pid);
                }

                bool first = true;
                foreach (Worker worker in pool.IdleList)
                {
                    sb.Append(first ? " idle: " : " ").Append(worker.Task.Pid);
                    first = false;
                }

                Klog.Printk(sb.ToString());
            }
        }
    }

    /// <summary>
    /// Shuts the subsystem down: stops the timers and rescuers, tells every worker to exit once idle, and waits
    /// up to <see cref="WorkqueueConfig.ShutdownTimeoutMs"/> for them. Workers blocked inside a work item
    /// (a deadlock under test) are left behind. Queueing afterwards is refused with a warning.
    /// </summary>
    public void Dispose()
    {
        if (_shutDown)
        {
            return;
        }

        _shutDown = true;
        WqMetrics.Unregister(this);
        long deadline = Environment.TickCount64 + Config.ShutdownTimeoutMs;
        Timers.Stop(Config.ShutdownTimeoutMs);

        var tasks = new List<EmuTask>();
        foreach (Workqueue wq in Workqueues())
        {
            Worker? rescuer;
            lock (MaydayLock)
            {
                rescuer = wq.RescuerWorker;
            }

            if (rescuer is not null)
            {
                rescuer.StopRequested = true;
                Sched.WakeUpProcess(rescuer.Task);
                tasks.Add(rescuer.Task);
            }
        }

        foreach (WorkerPool pool in Pools())
        {
            using (pool.Lock.EnterScope())
            {
                pool.Flags |= WorkerPool.PoolDying;
                while (pool.FirstIdleWorker() is { } idle)
                {
                    pool.DestroyWorkerLocked(idle);
                }
            }

            // A manager sleeping (interruptibly) between failed creations must notice; workers sleeping inside
            // a work item are left alone.
            foreach (EmuTask task in pool.WorkerTasks())
            {
                Sched.TryToWakeUp(task, TaskState.Interruptible);
                tasks.Add(task);
            }
        }

        EmuTask? self = EmuTask.Current;
        foreach (EmuTask task in tasks)
        {
            if (task != self)
            {
                task.Join((int)Math.Max(0, deadline - Environment.TickCount64));
            }
        }
    }

    internal int AllocPwqId() => _pwqIdr.Alloc();

    internal void PublishPwq(PoolWorkqueue pwq) => _pwqIdr.Publish(pwq.Id, pwq);

    internal void FreePwqId(PoolWorkqueue pwq) => _pwqIdr.Remove(pwq.Id);

    // get_work_pwq(): the pwq the work is queued on, or null when it is not queued.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal PoolWorkqueue? GetWorkPwq(WorkStruct work)
    {
        long data = Volatile.Read(ref work.Data);
        return (data & WorkStruct.PwqFlag) != 0 ? _pwqIdr.Find((int)(data >> WorkStruct.FlagBits)) : null;
    }

    // get_work_pool(): the pool the work is queued on or last ran on; null if never queued.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal WorkerPool? GetWorkPool(WorkStruct work)
    {
        long data = Volatile.Read(ref work.Data);
        if ((data & WorkStruct.PwqFlag) != 0)
        {
            return _pwqIdr.Find((int)(data >> WorkStruct.FlagBits))?.Pool;
        }

        int poolId = (int)(data >> WorkStruct.OffqPoolShift);
        return poolId == WorkStruct.OffqPoolNone ? null : _poolIdr.Find(poolId);
    }

    // alloc_unbound_pwq(): a pwq of wq on the shared unbound pool for (highpri, cpumask).
    internal PoolWorkqueue AllocUnboundPwq(Workqueue wq, bool highpri, int[] cpumask)
    {
        lock (PoolMutex)
        {
            WorkerPool pool = GetUnboundPoolLocked(highpri, cpumask, wq.Name);
            var pwq = new PoolWorkqueue(wq, pool, _pwqIdr.Alloc());
            _pwqIdr.Publish(pwq.Id, pwq);
            return pwq;
        }
    }

    // put_unbound_pool(): drop a reference; the last one destroys the pool and its workers. Sleeps.
    internal void PutUnboundPool(WorkerPool pool)
    {
        lock (PoolMutex)
        {
            if (--pool.Refcnt != 0)
            {
                return;
            }

            _poolIdr.Remove(pool.Id);
            _unboundPools.Remove(pool);
        }

        // Become the manager (waiting for a current one) and destroy every worker; the pool has no work.
        pool.Lock.Enter();
        while ((pool.Flags & WorkerPool.PoolManagerActive) != 0)
        {
            pool.Lock.Exit();
            Wait.WaitEvent(ManagerWait, static p => (Volatile.Read(ref p.Flags) & WorkerPool.PoolManagerActive) == 0, pool);
            pool.Lock.Enter();
        }

        pool.Flags |= WorkerPool.PoolManagerActive;
        while (pool.FirstIdleWorker() is { } worker)
        {
            pool.DestroyWorkerLocked(worker);
        }

        pool.Lock.Exit();

        Completion? detached = null;
        lock (pool.AttachLock)
        {
            if (pool.Workers.Count != 0)
            {
                detached = new Completion("&pool->detach_completion");
                pool.DetachCompletion = detached;
            }
        }

        detached?.WaitForCompletion();
        Timers.DelTimerSync(pool.IdleTimer);
        Timers.DelTimerSync(pool.MaydayTimer);
    }

    internal void UnregisterWorkqueue(Workqueue wq)
    {
        lock (PoolMutex)
        {
            _workqueues.Remove(wq);
        }
    }

    internal void NoteWorkerCreationFailure() => Interlocked.Increment(ref _workerCreationFailures);

    // WARN(): printed every time.
    internal void Warn(string message)
    {
        Interlocked.Increment(ref _warnings);
        Klog.Printk("WARNING: " + message);
    }

    // WARN_ON_ONCE(): printed the first time this system sees the message.
    internal void WarnOnce(string message)
    {
        Interlocked.Increment(ref _warnings);
        if (_warnedOnce.TryAdd(message, 0))
        {
            Klog.Printk("WARNING: " + message);
        }
    }

    // get_unbound_pool(): the pool with these attributes, shared, or a new one with its first worker. Context: PL.
    private WorkerPool GetUnboundPoolLocked(bool highpri, int[] cpumask, string forWq)
    {
        Debug.Assert(PoolMutex.IsHeldByCurrentThread, "wq_pool_mutex must be held");
        foreach (WorkerPool existing in _unboundPools)
        {
            if (existing.Highpri == highpri && existing.Cpumask.AsSpan().SequenceEqual(cpumask))
            {
                existing.Refcnt++;
                return existing;
            }
        }

        // With NUMA affinity (more than one node), a mask inside one node makes the pool that node's.
        int targetNode = -1;
        if (Layout.NrNodes > 1)
        {
            for (int node = 0; node < Layout.NrNodes; node++)
            {
                int[] nodeCpus = Layout.NodeCpusArray(node);
                if (Array.TrueForAll(cpumask, cpu => Array.IndexOf(nodeCpus, cpu) >= 0))
                {
                    targetNode = node;
                    break;
                }
            }
        }

        int id = _poolIdr.Alloc();
        var pool = new WorkerPool(this, id, cpu: -1, targetNode, cpumask, highpri);
        _poolIdr.Publish(id, pool);
        if (pool.CreateWorker() is null)
        {
            _poolIdr.Remove(id);
            throw new InvalidOperationException($"alloc_workqueue {forWq}: cannot create the first worker of unbound {pool}");
        }

        _unboundPools.Add(pool);
        return pool;
    }

    // Every pwq follows the freeze state. Context: PL.
    private void AdjustAllMaxActiveLocked()
    {
        foreach (Workqueue wq in _workqueues)
        {
            lock (wq.Mutex)
            {
                foreach (PoolWorkqueue pwq in wq.Pwqs)
                {
                    pwq.PwqAdjustMaxActiveLocked();
                }
            }
        }
    }

    // show_pwq(). Context: L.
    private static void ShowPwqLocked(PoolWorkqueue pwq)
    {
        WorkerPool pool = pwq.Pool;
        Klog.Printk($"  pwq {pool.Id}:{PoolInfo(pool)} active={pwq.NrActive}/{pwq.MaxActive}{(pwq.OnMaydayList ? " MAYDAY" : "")}");

        var inFlight = new StringBuilder();
        foreach (Worker worker in pool.Workers.ToArray())
        {
            if (worker.CurrentPwq == pwq)
            {
                inFlight.Append(inFlight.Length == 0 ? "    in-flight: " : ", ").Append(worker.Task.Pid)
                    .Append(worker == pwq.Wq.RescuerWorker ? "(RESCUER)" : "").Append(':').Append(worker.CurrentFuncName);
            }
        }

        if (inFlight.Length != 0)
        {
            Klog.Printk(inFlight.ToString());
        }

        var pending = new StringBuilder();
        for (WorkStruct work = pool.Worklist.EntryNext; work != pool.Worklist; work = work.EntryNext)
        {
            if (pool.System.GetWorkPwq(work) == pwq)
            {
                pending.Append(pending.Length == 0 ? "    pending: " : ", ").Append(DescribeWork(work));
            }
        }

        if (pending.Length != 0)
        {
            Klog.Printk(pending.ToString());
        }

        var delayed = new StringBuilder();
        for (WorkStruct work = pwq.DelayedWorks.EntryNext; work != pwq.DelayedWorks; work = work.EntryNext)
        {
            delayed.Append(delayed.Length == 0 ? "    delayed: " : ", ").Append(DescribeWork(work));
        }

        if (delayed.Length != 0)
        {
            Klog.Printk(delayed.ToString());
        }
    }

    // pr_cont_work()
    private static string DescribeWork(WorkStruct work) =>
        work is WqBarrier barrier ? $"BAR({barrier.Task.Pid})" : work.FuncName;

    // pr_cont_pool_info()
    private static string PoolInfo(WorkerPool pool) =>
        $" cpus={string.Join(',', pool.Cpus)}{(pool.Node >= 0 ? $" node={pool.Node}" : "")} flags=0x{pool.Flags:x} nice={(pool.Highpri ? -20 : 0)}";

    // An id allocator with lock-free lookups (idr with RCU readers): ids are reused after removal.
    private sealed class Idr<T>
        where T : class
    {
        private readonly Lock _lock = new();
        private readonly Stack<int> _free = new(); // _lock
        private T?[] _slots = new T?[16];          // _lock for writes; lookups read a published array
        private int _next;                         // _lock

        public int Alloc()
        {
            lock (_lock)
            {
                if (_free.TryPop(out int id))
                {
                    return id;
                }

                id = _next++;
                if (id == _slots.Length)
                {
                    var grown = new T?[_slots.Length * 2];
                    _slots.CopyTo(grown, 0);
                    Volatile.Write(ref _slots, grown);
                }

                return id;
            }
        }

        public void Publish(int id, T item)
        {
            lock (_lock)
            {
                Volatile.Write(ref _slots[id], item);
            }
        }

        public void Remove(int id)
        {
            lock (_lock)
            {
                Volatile.Write(ref _slots[id], null);
                _free.Push(id);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public T? Find(int id)
        {
            T?[] slots = Volatile.Read(ref _slots);
            return (uint)id < (uint)slots.Length ? Volatile.Read(ref slots[id]) : null;
        }

        public T[] Snapshot()
        {
            lock (_lock)
            {
                var items = new List<T>();
                foreach (T? item in _slots)
                {
                    if (item is not null)
                    {
                        items.Add(item);
                    }
                }

                return items.ToArray();
            }
        }
    }
}
