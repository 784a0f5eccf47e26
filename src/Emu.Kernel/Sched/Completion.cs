// Mirrors: kernel/sched/completion.c (v4.4): init_completion, reinit_completion, complete, complete_all,
// wait_for_completion(_timeout), try_wait_for_completion, completion_done.
//
// Model: a count of "done" events under the wait queue's lock; each complete() adds one and wakes one
// exclusive waiter, complete_all() saturates the count and wakes everyone, and each successful wait consumes
// one event unless the count is saturated.
// Emu addition: a completion is an IWaitResource with a name and an optional expected completer, so a
// wait_for_completion sleep shows in the wait-for graph as "waits for completion X (completed by T)".
namespace Emu.Kernel;

/// <summary>struct completion.</summary>
public sealed class Completion : IWaitResource
{
    private const uint CompleteAllDone = uint.MaxValue; // UINT_MAX: complete_all() was called

    private readonly WaitQueueHead _wait; // I
    private uint _done;                   // L: _wait.Lock (read unlocked by CompletionDone)
    private EmuTask? _expectedCompleter;  // any task; read racily by detectors

    /// <summary>init_completion().</summary>
    /// <param name="name">What reports call it, e.g. "&amp;ordered->completion".</param>
    public Completion(string name)
    {
        Name = name;
        _wait = new WaitQueueHead(this);
    }

    /// <summary>The completion's name.</summary>
    public string Name { get; }

    /// <summary>The task expected to call complete(), if known (e.g. the worker running the flush work).</summary>
    public EmuTask? ExpectedCompleter
    {
        get => Volatile.Read(ref _expectedCompleter);
        set => Volatile.Write(ref _expectedCompleter, value);
    }

    /// <summary>completion_done(): whether a wait would return without sleeping.</summary>
    public bool CompletionDone => Volatile.Read(ref _done) != 0;

    /// <summary>reinit_completion(): forgets past complete() calls.</summary>
    public void Reinit()
    {
        lock (_wait.Lock)
        {
            _done = 0;
        }
    }

    /// <summary>complete(): signals one waiter (or the next wait).</summary>
    public void Complete()
    {
        Sched.Point(SchedPoint.Complete);
        lock (_wait.Lock)
        {
            if (_done != CompleteAllDone)
            {
                _done++;
            }

            _wait.WakeUpLocked(TaskState.Normal, 1, null, 0);
        }
    }

    /// <summary>complete_all(): signals every current and future waiter until <see cref="Reinit"/>.</summary>
    public void CompleteAll()
    {
        Sched.Point(SchedPoint.Complete);
        lock (_wait.Lock)
        {
            _done = CompleteAllDone;
            _wait.WakeUpLocked(TaskState.Normal, 0, null, 0);
        }
    }

    /// <summary>try_wait_for_completion(): consumes an event without sleeping.</summary>
    /// <returns>false if none was available.</returns>
    public bool TryWaitForCompletion()
    {
        if (Volatile.Read(ref _done) == 0)
        {
            return false;
        }

        lock (_wait.Lock)
        {
            if (_done == 0)
            {
                return false;
            }

            if (_done != CompleteAllDone)
            {
                _done--;
            }

            return true;
        }
    }

    /// <summary>wait_for_completion(): sleeps uninterruptibly until an event is available, and consumes it.</summary>
    public void WaitForCompletion()
    {
        using KFrame frame = KFunc.Enter("wait_for_completion");
        WaitForCommon(Sched.MaxScheduleTimeout, TaskState.Uninterruptible);
    }

    /// <summary>wait_for_completion_timeout().</summary>
    /// <returns>0 on timeout, else the ms left (at least 1).</returns>
    public long WaitForCompletionTimeout(long timeoutMs)
    {
        using KFrame frame = KFunc.Enter("wait_for_completion_timeout");
        return WaitForCommon(timeoutMs, TaskState.Uninterruptible);
    }

    /// <summary>wait_for_completion_io(): as <see cref="WaitForCompletion"/>, accounted as I/O wait.</summary>
    public void WaitForCompletionIo()
    {
        using KFrame frame = KFunc.Enter("wait_for_completion_io");
        WaitForCommon(Sched.MaxScheduleTimeout, TaskState.Uninterruptible, io: true);
    }

    /// <inheritdoc />
    public string Describe() => "completion " + Name;

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
        EmuTask? completer = ExpectedCompleter;
        if (completer is not null)
        {
            holders.Add(completer);
        }
    }

    // __wait_for_common() / do_wait_for_common().
    private long WaitForCommon(long timeoutMs, TaskState state, bool io = false)
    {
        Sched.Point(SchedPoint.WaitForCompletion);
        EmuTask task = Wait.CurrentTask();
        using KFrame frame = task.Enter("__wait_for_common");
        WaitQueueEntry entry = task.WaitEntry;
        _wait.Lock.Enter();
        try
        {
            if (_done == 0)
            {
                entry.Exclusive = true;
                entry.KeyOwner = null;
                _wait.AddTailLocked(entry);
                task.SetWaitingOn(this);
                do
                {
                    task.SetStateBarrier(state);
                    _wait.Lock.Exit();
                    try
                    {
                        timeoutMs = io ? Sched.IoScheduleTimeout(timeoutMs) : Sched.ScheduleTimeout(timeoutMs);
                    }
                    finally
                    {
                        _wait.Lock.Enter();
                    }

                    // A complete() that woke us removed the entry; anything else (timeout, atomic-context
                    // bug) left it queued. Re-queue so the next complete() still finds us.
                    if (_done == 0 && timeoutMs != 0 && entry.Head is null)
                    {
                        _wait.AddTailLocked(entry);
                    }
                }
                while (_done == 0 && timeoutMs != 0);

                if (entry.Head is not null)
                {
                    _wait.RemoveLocked(entry);
                }

                task.SetStateRelaxed(TaskState.Running);
                task.SetWaitingOn(null);
                if (_done == 0)
                {
                    return timeoutMs;
                }
            }

            if (_done != CompleteAllDone)
            {
                _done--;
            }

            return Math.Max(timeoutMs, 1);
        }
        finally
        {
            _wait.Lock.Exit();
        }
    }
}
