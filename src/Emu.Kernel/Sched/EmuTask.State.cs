// task_struct's scheduling fields: state, switch count, what the task waits on, preempt count, and the
// monitor schedule() parks the thread on. See Sched (Core.cs) for the protocol.
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

public sealed partial class EmuTask
{
    /// <summary>preempt_count() added by irq entry. HARDIRQ_OFFSET.</summary>
    public const int HardirqOffset = 1 << 16;

    private readonly object _park = new(); // the monitor schedule() waits on and try_to_wake_up() pulses
    private int _state;                    // TaskState; Interlocked/Volatile, written by the task and its wakers
    private long _nvcsw;                   // written by the task only
    private IWaitResource? _waitingOn;     // written by the task only; read by detectors
    private long _sleepStartMs;            // written by the task only; read by detectors
    private int _preemptCount;             // written by the task only
    private bool _scheduleBugReported;     // written by the task only

    /// <summary>task_struct->state.</summary>
    public TaskState State => (TaskState)Volatile.Read(ref _state);

    /// <summary>Voluntary context switches (nvcsw): how many times schedule() actually put the task to sleep.</summary>
    public long Nvcsw => Volatile.Read(ref _nvcsw);

    /// <summary>
    /// What the task sleeps on, set by prepare_to_wait and cleared by finish_wait; null when it sleeps on nothing
    /// named (msleep) or runs.
    /// </summary>
    public IWaitResource? WaitingOn => Volatile.Read(ref _waitingOn);

    /// <summary>Environment.TickCount64 when the task last went to sleep in schedule().</summary>
    public long SleepStartMs => Volatile.Read(ref _sleepStartMs);

    /// <summary>preempt_count(): non-zero in atomic context (irq or preemption disabled).</summary>
    public int PreemptCount => _preemptCount;

    /// <summary>in_atomic(): the task must not sleep.</summary>
    public bool InAtomic => _preemptCount != 0;

    /// <summary>in_irq(): the task runs in (emulated) hard interrupt context, e.g. a bio completion.</summary>
    public bool InIrq => (_preemptCount & ~(HardirqOffset - 1)) != 0;

    /// <summary>irq_enter(): the calling task enters interrupt context. Call on the current task only.</summary>
    public void IrqEnter()
    {
        AssertCurrent();
        _preemptCount += HardirqOffset;
    }

    /// <summary>irq_exit(): leaves interrupt context.</summary>
    public void IrqExit()
    {
        AssertCurrent();
        if (_preemptCount < HardirqOffset)
        {
            ThrowHelper.ThrowInvalidOperation("irq_exit without irq_enter");
        }

        _preemptCount -= HardirqOffset;
    }

    /// <summary>Enters interrupt context until the returned scope is disposed.</summary>
    public IrqScope EnterIrq()
    {
        IrqEnter();
        return new IrqScope(this);
    }

    /// <summary>preempt_disable().</summary>
    public void PreemptDisable()
    {
        AssertCurrent();
        _preemptCount++;
    }

    /// <summary>preempt_enable().</summary>
    public void PreemptEnable()
    {
        AssertCurrent();
        if ((_preemptCount & (HardirqOffset - 1)) == 0)
        {
            ThrowHelper.ThrowInvalidOperation("preempt_enable without preempt_disable");
        }

        _preemptCount--;
    }

    // set_current_state(): the full fence orders the state store before the caller's condition check, pairing
    // with the waker's condition store before try_to_wake_up() reads the state.
    internal void SetStateBarrier(TaskState state) => Interlocked.Exchange(ref _state, (int)state);

    // __set_current_state()
    internal void SetStateRelaxed(TaskState state) => Volatile.Write(ref _state, (int)state);

    internal void SetWaitingOn(IWaitResource? resource) => Volatile.Write(ref _waitingOn, resource);

    // ttwu_do_wakeup(): moves a task whose state is in mask to TASK_RUNNING and unparks it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal bool TryWake(int mask)
    {
        while (true)
        {
            int s = Volatile.Read(ref _state);
            if ((s & mask) == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _state, (int)TaskState.Running, s) == s)
            {
                break;
            }
        }

        // The sleeper re-checks _state under _park before each Monitor.Wait, so pulsing under it cannot be lost.
        lock (_park)
        {
            Monitor.Pulse(_park);
        }

        return true;
    }

    // True the first time the task schedules while atomic.
    internal bool NoteScheduleBug()
    {
        bool first = !_scheduleBugReported;
        _scheduleBugReported = true;
        return first;
    }

    internal void AccountSleep()
    {
        Volatile.Write(ref _nvcsw, _nvcsw + 1);
        Volatile.Write(ref _sleepStartMs, Environment.TickCount64);
    }

    // The body of __schedule() for a task that really sleeps: park until a waker (or the timeout, like
    // process_timeout()) sets TASK_RUNNING. Returns the remaining timeout in ms, as schedule_timeout() does.
    internal long Park(long timeoutMs)
    {
        bool forever = timeoutMs == Sched.MaxScheduleTimeout;
        long deadline = forever ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        lock (_park)
        {
            while (Volatile.Read(ref _state) != (int)TaskState.Running)
            {
                if (forever)
                {
                    Monitor.Wait(_park);
                    continue;
                }

                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    // process_timeout(): the timer wakes the task like any waker would (_park is re-entrant).
                    TryWake((int)TaskState.Normal);
                    continue;
                }

                Monitor.Wait(_park, (int)Math.Min(left, int.MaxValue));
            }
        }

        return forever ? Sched.MaxScheduleTimeout : Math.Max(0, deadline - Environment.TickCount64);
    }

    [System.Diagnostics.Conditional("DEBUG")]
    private void AssertCurrent() =>
        System.Diagnostics.Debug.Assert(t_current == this, "only the task itself may change its own context");
}

/// <summary>Interrupt context for the scope of a using statement; see <see cref="EmuTask.EnterIrq"/>.</summary>
public readonly ref struct IrqScope
{
    private readonly EmuTask _task;

    internal IrqScope(EmuTask task) => _task = task;

    /// <summary>irq_exit().</summary>
    public void Dispose() => _task.IrqExit();
}
