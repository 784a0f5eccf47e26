// Emu's wait-for graph. The kernel has no counterpart for this deadlock: lockdep (kernel/locking/lockdep.c)
// checks lock classes for circular dependencies, but page locks, extent ranges and ordered-extent waits are
// invisible to it, so ade770294df2's cycle only ever showed as hung-task reports. The walk itself follows
// rt_mutex_adjust_prio_chain()'s deadlock detection (DeadlockDetector.Walk.cs).
//
// Model: the graph is never stored. Its edges are what tasks already record: a sleeper's WaitingOn resource,
// and the resource's holders (lock owners, page-lock owners, a completion's expected completer). A cycle can
// only close when its last member goes to sleep, so the detector walks the chain synchronously in schedule()'s
// sleep observer, on the task that is about to block: in the common case (the holder is running) that is one
// AppendHolders call and a few loads. A cycle found is re-verified (every member still in the same sleep, every
// holder still holding), reported once per distinct cycle (same tasks on the same resources), printed to the
// kernel log with the victims blocked behind it, and handed to DeadlockDetected and WaitForDeadlock. A task
// that blocks behind an already reported cycle later is printed as a new victim.
// Differs: a wait with a timeout is treated like any other; a cycle through one is reported even though the
// timeout would break it. A cycle closed by a holder change rather than a sleep (a completion's expected
// completer set after its waiters slept) is found by Scan, which khungtaskd runs on each wake-up.
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>
/// Finds circular waits among sleeping tasks as they close, reports them to the kernel log and exposes them as
/// <see cref="DeadlockReport"/>s. Install it with <see cref="Install"/>; each instance keeps its own reports.
/// </summary>
public sealed partial class DeadlockDetector : ISleepObserver, IDisposable
{
    /// <summary>Longest chain of tasks walked from a sleeper (the rtmutex walk's max_lock_depth).</summary>
    public const int MaxLockDepth = 32;

    /// <summary>Most tasks one walk explores before giving up.</summary>
    public const int MaxTasksVisited = 256;

    private readonly Lock _lock = new();
    private readonly List<Reported> _reported = new();          // L: _lock
    private readonly ManualResetEventSlim _firstDetected = new(); // set once, with the first report
    private int _installed;                                       // Interlocked

    /// <summary>
    /// Raised once per new deadlock, after it is printed. Runs on the task that closed the cycle, inside
    /// schedule() just before it blocks (or on the thread running <see cref="Scan"/>): handlers must not sleep
    /// or block.
    /// </summary>
    public event Action<DeadlockReport>? DeadlockDetected;

    /// <summary>Number of deadlocks reported so far.</summary>
    public int DeadlocksDetected
    {
        get
        {
            lock (_lock)
            {
                return _reported.Count;
            }
        }
    }

    /// <summary>Every deadlock reported so far, oldest first.</summary>
    public DeadlockReport[] Reports
    {
        get
        {
            lock (_lock)
            {
                var reports = new DeadlockReport[_reported.Count];
                for (int i = 0; i < reports.Length; i++)
                {
                    reports[i] = _reported[i].Report;
                }

                return reports;
            }
        }
    }

    /// <summary>Starts watching every sleep (<see cref="Sched.AddSleepObserver"/>). Idempotent.</summary>
    public void Install()
    {
        if (Interlocked.Exchange(ref _installed, 1) == 0)
        {
            Sched.AddSleepObserver(this);
        }
    }

    /// <summary>Stops watching sleeps. Reports already made are kept. Idempotent.</summary>
    public void Uninstall()
    {
        if (Interlocked.Exchange(ref _installed, 0) == 1)
        {
            Sched.RemoveSleepObserver(this);
        }
    }

    /// <inheritdoc />
    public void Dispose() => Uninstall();

    /// <summary>
    /// Blocks the calling host thread until this detector has reported a deadlock (and its
    /// <see cref="DeadlockDetected"/> handlers have run), or the timeout elapses.
    /// Not for emulated tasks (they must sleep through schedule(); use <see cref="DeadlockDetected"/>).
    /// </summary>
    /// <returns>The first deadlock reported, or null on timeout.</returns>
    public DeadlockReport? WaitForDeadlock(int timeoutMs)
    {
        if (EmuTask.Current is not null)
        {
            ThrowHelper.ThrowInvalidOperation("WaitForDeadlock blocks a host thread; an emulated task must use DeadlockDetected.");
        }

        if (!_firstDetected.Wait(timeoutMs))
        {
            return null;
        }

        lock (_lock)
        {
            return _reported[0].Report;
        }
    }

    /// <summary>
    /// Walks from every sleeping task, reporting cycles not yet reported (those closed by a holder change rather
    /// than a sleep) and victims not yet printed.
    /// </summary>
    /// <returns>Number of new deadlocks reported.</returns>
    public int Scan()
    {
        int found = 0;
        foreach (EmuTask task in TaskList.Snapshot())
        {
            if (task.WaitingOn is not null && IsSleeping(task) && CheckChain(task, closing: false))
            {
                found++;
            }
        }

        return found;
    }

    /// <summary>
    /// The tasks blocked behind <paramref name="report"/>'s cycle now: every sleeping task that waits on a
    /// resource held (or to be completed) by a cycle member or by another such task.
    /// </summary>
    public static DeadlockVictim[] FindVictims(DeadlockReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return FindVictims(report.Tasks).ToArray();
    }

    /// <inheritdoc />
    void ISleepObserver.SleepStarted(EmuTask task)
    {
        if (task.WaitingOn is null)
        {
            return;
        }

        // Two tasks closing a cycle at once each publish WaitingOn, then read the other's: the fence makes sure
        // at least one of them sees both edges.
        Interlocked.MemoryBarrier();
        CheckChain(task, closing: true);
    }

    /// <inheritdoc />
    void ISleepObserver.SleepEnded(EmuTask task)
    {
        // Nothing to undo: the graph is never stored, and a reported cycle stays reported (each distinct cycle
        // is printed once even if a member wakes spuriously and sleeps again on the same resource).
    }

    // True if a new deadlock was reported.
    private bool CheckChain(EmuTask start, bool closing)
    {
        Walk walk = Walk.ForThisThread();
        try
        {
            int first = walk.Run(start);
            return first >= 0 && OnCycle(walk, first, start, closing);
        }
        finally
        {
            walk.Reset();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool OnCycle(Walk walk, int first, EmuTask start, bool closing)
    {
        ReadOnlySpan<EmuTask?> tasks = walk.Tasks.AsSpan(first, walk.Top - first + 1);
        ReadOnlySpan<IWaitResource?> resources = walk.Resources.AsSpan(first, walk.Top - first + 1);
        DeadlockVictim? lateVictim = null;
        Reported? known;
        lock (_lock)
        {
            known = FindReportedLocked(tasks, resources);
            if (known is not null && first > 0 && known.Victims.Add(start))
            {
                // start reached the reported cycle through Tasks[1]; it blocked after the report was printed.
                EmuTask through = walk.Tasks[1]!;
                lateVictim = new DeadlockVictim(start, walk.Resources[0]!, through, tasks.IndexOf(through) >= 0);
            }
        }

        if (known is not null)
        {
            if (lateVictim is not null)
            {
                PrintLateVictim(known.Report, lateVictim);
            }

            return false;
        }

        if (!walk.Verify(first))
        {
            return false;
        }

        long detectedAtMs = Environment.TickCount64;
        EmuTask? closedBy = closing && first == 0 ? start : null;
        DeadlockEdge[] cycle = BuildCycle(walk, first, closedBy);
        EmuTask[] members = new EmuTask[cycle.Length];
        for (int i = 0; i < cycle.Length; i++)
        {
            members[i] = cycle[i].Waiter;
        }

        List<DeadlockVictim> victims = FindVictims(members);
        string[] lines = FormatReport(cycle, victims);
        DeadlockReport report;
        lock (_lock)
        {
            if (FindReportedLocked(tasks, resources) is not null)
            {
                return false;
            }

            report = new DeadlockReport(_reported.Count + 1, cycle, victims, closedBy, detectedAtMs, lines);
            var entry = new Reported(report);
            foreach (DeadlockVictim v in victims)
            {
                entry.Victims.Add(v.Task);
            }

            _reported.Add(entry);
        }

        Klog.PrintkLines(report.Lines);
        SchedMetrics.NoteDeadlock();
        KernelTrace.DeadlockFound(report);
        RaiseDeadlockDetected(report);
        _firstDetected.Set();
        return true;
    }

    // The handlers run inside schedule(): an exception escaping into the sleeping task would leave its wait
    // half-done, so it is reported as a BUG instead.
    private void RaiseDeadlockDetected(DeadlockReport report)
    {
        try
        {
            DeadlockDetected?.Invoke(report);
        }
        catch (Exception e)
        {
            Klog.Bug($"BUG: DeadlockDetected handler failed: {e.GetType().Name}: {e.Message}", null);
        }
    }

    // The cycle's edges in wait order, starting with the closing task if known, else with the lowest pid.
    private static DeadlockEdge[] BuildCycle(Walk walk, int first, EmuTask? closedBy)
    {
        int n = walk.Top - first + 1;
        int rotate = 0;
        if (closedBy is null)
        {
            for (int k = 1; k < n; k++)
            {
                if (walk.Tasks[first + k]!.Pid < walk.Tasks[first + rotate]!.Pid)
                {
                    rotate = k;
                }
            }
        }

        var cycle = new DeadlockEdge[n];
        for (int k = 0; k < n; k++)
        {
            int i = (rotate + k) % n;
            int next = (i + 1) % n;
            cycle[k] = new DeadlockEdge(walk.Tasks[first + i]!, walk.Resources[first + i]!, walk.Tasks[first + next]!);
        }

        return cycle;
    }

    // Fixpoint over the sleeping tasks: a task whose resource has a blocked holder is blocked too.
    private static List<DeadlockVictim> FindVictims(EmuTask[] members)
    {
        var blocked = new HashSet<EmuTask>(members);
        var victims = new List<DeadlockVictim>();
        var holders = new List<EmuTask>();
        EmuTask[] all = TaskList.Snapshot();
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (EmuTask task in all)
            {
                IWaitResource? resource = task.WaitingOn;
                if (resource is null || !IsSleeping(task) || blocked.Contains(task))
                {
                    continue;
                }

                holders.Clear();
                resource.AppendHolders(holders);
                foreach (EmuTask holder in holders)
                {
                    if (blocked.Contains(holder))
                    {
                        victims.Add(new DeadlockVictim(task, resource, holder, Array.IndexOf(members, holder) >= 0));
                        blocked.Add(task);
                        changed = true;
                        break;
                    }
                }
            }
        }

        return victims;
    }

    private Reported? FindReportedLocked(ReadOnlySpan<EmuTask?> tasks, ReadOnlySpan<IWaitResource?> resources)
    {
        foreach (Reported r in _reported)
        {
            if (r.Matches(tasks, resources))
            {
                return r;
            }
        }

        return null;
    }

    private static string[] FormatReport(DeadlockEdge[] cycle, List<DeadlockVictim> victims)
    {
        var lines = new List<string>(cycle.Length + victims.Count + 2)
        {
            $"emu: deadlock detected: circular wait between {cycle.Length} {(cycle.Length == 1 ? "task" : "tasks")}",
        };
        foreach (DeadlockEdge e in cycle)
        {
            lines.Add($"  {Name(e.Waiter)} waits for {e.Resource.Describe()}{HolderPhrase(e.Resource)} {Name(e.Holder)}");
        }

        lines.Add("  cycle: " + string.Join(" -> ", cycle.Select(e => Name(e.Waiter))) + " -> " + Name(cycle[0].Waiter));
        foreach (DeadlockVictim v in victims)
        {
            lines.Add(FormatVictim(v));
        }

        return lines.ToArray();
    }

    private static void PrintLateVictim(DeadlockReport report, DeadlockVictim victim)
    {
        string members = string.Join(", ", report.Cycle.Select(e => Name(e.Waiter)));
        Klog.PrintkLines(
        [
            $"emu: deadlock: another task blocked behind the circular wait of {members}",
            FormatVictim(victim),
        ]);
    }

    private static string FormatVictim(DeadlockVictim v) =>
        $"  victim: {Name(v.Task)} waits for {v.Resource.Describe()}{HolderPhrase(v.Resource)} {Name(v.Through)} ({(v.ThroughCycleMember ? "in the cycle" : "victim")})";

    private static string HolderPhrase(IWaitResource resource) =>
        resource is Completion ? ", to be completed by" : " held by";

    private static string Name(EmuTask task) => $"{task.Comm}:{task.Pid}";

    // A reported cycle, and every task printed as blocked behind it.
    private sealed class Reported(DeadlockReport report)
    {
        private readonly EmuTask[] _tasks = report.Tasks;         // I
        private readonly IWaitResource[] _resources = report.Resources; // I

        public DeadlockReport Report { get; } = report;

        public HashSet<EmuTask> Victims { get; } = new(); // L: detector._lock

        // The same tasks sleeping on the same resources, in the same circular order from any starting point.
        public bool Matches(ReadOnlySpan<EmuTask?> tasks, ReadOnlySpan<IWaitResource?> resources)
        {
            int n = _tasks.Length;
            if (tasks.Length != n)
            {
                return false;
            }

            int offset = Array.IndexOf(_tasks, tasks[0]);
            if (offset < 0)
            {
                return false;
            }

            for (int k = 0; k < n; k++)
            {
                int i = (offset + k) % n;
                if (_tasks[i] != tasks[k] || _resources[i] != resources[k])
                {
                    return false;
                }
            }

            return true;
        }
    }
}
