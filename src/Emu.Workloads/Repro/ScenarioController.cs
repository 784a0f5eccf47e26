// Scripted interleavings: the repro drives the tasks of the deadlock through the order of the commit's
// diagram by stopping each at a named scheduling point (Sched.Point, SchedPoint) until the script lets it go,
// and by waiting until given tasks are asleep on given resources (observed on every sleep, as the wait-for
// graph observes them). Nothing is timed: every hand-off is an event.
// A task stopped at a pause point sleeps through schedule() in TASK_IDLE on the pause's wait queue, so the
// hung-task detector does not count it and the wait-for graph sees what it waits on ("repro pause point ...",
// held by nobody). The script runs on a host thread and waits with host primitives.
using Emu.Kernel;

namespace Emu.Workloads.Repro;

/// <summary>A script step that did not happen: the emulated kernel did not behave as the scenario needs.</summary>
public sealed class ScenarioException(string message) : Exception(message);

/// <summary>One pause point: a task stops there (once) until <see cref="Release"/>.</summary>
internal sealed class ScenarioGate : IWaitResource
{
    private readonly WaitQueueHead _wq;                     // I
    private readonly ManualResetEventSlim _arrived = new(); // set by the paused task
    private volatile bool _released;

    public ScenarioGate(string name)
    {
        Name = name;
        _wq = new WaitQueueHead(this);
    }

    public string Name { get; }

    /// <summary>Whether the task has reached the point.</summary>
    public bool Arrived => _arrived.IsSet;

    public string Describe() => "repro pause point " + Name;

    public void AppendHolders(List<EmuTask> holders)
    {
    }

    /// <summary>On the paused task: announce arrival and sleep until released.</summary>
    public void Park()
    {
        _arrived.Set();
        Wait.WaitEvent(_wq, static g => g._released, this, TaskState.Idle, this);
    }

    /// <summary>On the host: wait until the task has reached the point.</summary>
    public void WaitArrived(int timeoutMs)
    {
        if (!_arrived.Wait(timeoutMs))
        {
            throw new ScenarioException($"no task reached the pause point '{Name}' within {timeoutMs} ms");
        }
    }

    /// <summary>Lets the paused task go on (or lets it pass without stopping, if it has not arrived yet).</summary>
    public void Release()
    {
        _released = true;
        Wait.WakeUpAll(_wq);
    }
}

/// <summary>
/// Installs the scheduling-point hooks and a sleep observer for one scripted run; rules stop named tasks at
/// named points, and the script waits for tasks to fall asleep.
/// </summary>
internal sealed class ScenarioController : ISleepObserver, IDisposable
{
    private readonly Lock _lock = new();
    private readonly List<SleepWaiter> _waiters = new(); // L: _lock
    private Rule[] _rules = [];                          // copy-on-write under _lock; read lock-free by the hooks
    private int _installed;

    /// <summary>The longest the script waits for one step.</summary>
    public int StepTimeoutMs { get; init; } = 10_000;

    /// <summary>Installs the point hooks and the sleep observer.</summary>
    public void Install()
    {
        if (Interlocked.Exchange(ref _installed, 1) == 0)
        {
            Sched.SetPointDetailHook(OnDetailPoint);
            Sched.SetPointHook(OnPoint);
            Sched.AddSleepObserver(this);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _installed, 0) == 1)
        {
            Sched.SetPointDetailHook(null);
            Sched.SetPointHook(null);
            Sched.RemoveSleepObserver(this);
        }
    }

    /// <summary>
    /// Stops <paramref name="task"/> the first time it reaches <paramref name="point"/> with a detail that
    /// <paramref name="match"/> accepts.
    /// </summary>
    public ScenarioGate PauseAt(EmuTask task, SchedPoint point, Func<object?, bool> match, string name)
    {
        var gate = new ScenarioGate(name);
        AddRule(new Rule(task, point, match, null, gate));
        return gate;
    }

    /// <summary>
    /// Stops <paramref name="task"/> the first time it reaches <paramref name="point"/> (a point without detail)
    /// while <paramref name="where"/> accepts its state (e.g. its shadow stack).
    /// </summary>
    public ScenarioGate PauseWhere(EmuTask task, SchedPoint point, Func<EmuTask, bool> where, string name)
    {
        var gate = new ScenarioGate(name);
        AddRule(new Rule(task, point, null, where, gate));
        return gate;
    }

    /// <summary>
    /// Waits (host thread) until <paramref name="condition"/> holds; it is checked now and whenever an emulated
    /// task is about to sleep, so a condition about sleeping tasks is seen as soon as it becomes true.
    /// </summary>
    public void WaitUntil(Func<bool> condition, string what)
    {
        var waiter = new SleepWaiter(condition);
        lock (_lock)
        {
            _waiters.Add(waiter);
        }

        try
        {
            if (condition())
            {
                return;
            }

            if (!waiter.Done.Wait(StepTimeoutMs))
            {
                throw new ScenarioException($"{what} did not happen within {StepTimeoutMs} ms");
            }
        }
        finally
        {
            lock (_lock)
            {
                _waiters.Remove(waiter);
            }
        }
    }

    /// <summary>Whether <paramref name="task"/> is asleep (not running, not exited) on a resource <paramref name="on"/> accepts.</summary>
    public static bool IsAsleepOn(EmuTask task, Func<IWaitResource, bool> on)
    {
        TaskState state = task.State;
        IWaitResource? resource = task.WaitingOn;
        return state != TaskState.Running && state != TaskState.Dead && resource is not null && on(resource);
    }

    /// <inheritdoc />
    void ISleepObserver.SleepStarted(EmuTask task)
    {
        SleepWaiter[] waiters;
        lock (_lock)
        {
            if (_waiters.Count == 0)
            {
                return;
            }

            waiters = _waiters.ToArray();
        }

        foreach (SleepWaiter w in waiters)
        {
            if (!w.Done.IsSet && w.Condition())
            {
                w.Done.Set();
            }
        }
    }

    /// <inheritdoc />
    void ISleepObserver.SleepEnded(EmuTask task)
    {
    }

    private void AddRule(Rule rule)
    {
        lock (_lock)
        {
            _rules = [.. _rules, rule];
        }
    }

    private void OnDetailPoint(SchedPoint point, object? detail)
    {
        Rule? rule = Find(point, detail, detailPoint: true);
        rule?.Gate.Park();
    }

    private void OnPoint(SchedPoint point)
    {
        Rule? rule = Find(point, null, detailPoint: false);
        rule?.Gate.Park();
    }

    private Rule? Find(SchedPoint point, object? detail, bool detailPoint)
    {
        Rule[] rules = Volatile.Read(ref _rules);
        if (rules.Length == 0)
        {
            return null;
        }

        EmuTask? task = EmuTask.Current;
        foreach (Rule r in rules)
        {
            if (r.Task != task || r.Point != point || (r.Match is not null) != detailPoint)
            {
                continue;
            }

            bool hit = r.Match is not null ? r.Match(detail) : r.Where!(task);
            if (hit && Interlocked.Exchange(ref r.Fired, 1) == 0)
            {
                return r;
            }
        }

        return null;
    }

    private sealed class Rule(EmuTask task, SchedPoint point, Func<object?, bool>? match, Func<EmuTask, bool>? where, ScenarioGate gate)
    {
        public readonly EmuTask Task = task;
        public readonly SchedPoint Point = point;
        public readonly Func<object?, bool>? Match = match;
        public readonly Func<EmuTask, bool>? Where = where;
        public readonly ScenarioGate Gate = gate;
        public int Fired;
    }

    private sealed class SleepWaiter(Func<bool> condition)
    {
        public readonly Func<bool> Condition = condition;
        public readonly ManualResetEventSlim Done = new();
    }
}
