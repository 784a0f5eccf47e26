// Mirrors: kernel/time/timer.c (v4.4), the part workqueues use: struct timer_list, add_timer, mod_timer,
// del_timer, del_timer_sync, timer_pending, and the TIMER_SOFTIRQ that runs expired timers.
//
// Model: one timer base per WorkqueueSystem: a min-heap of armed timers ordered by expiry (ms on the
// Environment.TickCount64 clock, Emu's jiffies) and a kernel thread, ksoftirqd/0, that sleeps in
// schedule_timeout() until the earliest expiry and runs expired callbacks in softirq context (preemption
// disabled: a callback that sleeps is a "scheduling while atomic" BUG, as in the kernel). Re-arming or
// deleting a timer bumps its sequence number, which invalidates its old heap entry (lazy deletion).
// Differs: a single base and thread serve all CPUs (add_timer_on's CPU is ignored); del_timer_sync spins
// while the callback runs, like the kernel's try_to_del_timer_sync loop, because callbacks never sleep.
namespace Emu.Kernel;

/// <summary>A timer callback (timer_list->function), called with timer_list->data.</summary>
public delegate void TimerFunc(object? data);

/// <summary>struct timer_list.</summary>
public sealed class TimerList
{
    internal long Expires;    // L: base lock
    internal long Seq;        // L: base lock; identifies the live heap entry
    private volatile bool _pending; // written under the base lock

    /// <summary>setup_timer().</summary>
    public TimerList(TimerFunc function, object? data)
    {
        Function = function ?? throw new ArgumentNullException(nameof(function));
        Data = data;
    }

    /// <summary>timer_list->function.</summary>
    public TimerFunc Function { get; }

    /// <summary>timer_list->data.</summary>
    public object? Data { get; }

    /// <summary>timer_pending(): armed and not yet run.</summary>
    public bool TimerPending => _pending;

    internal bool PendingLocked
    {
        get => _pending;
        set => _pending = value;
    }
}

/// <summary>A timer base (struct tvec_base) and its softirq thread.</summary>
internal sealed class TimerBase
{
    private readonly Lock _lock = new();
    private readonly PriorityQueue<(TimerList Timer, long Seq), long> _heap = new(); // L: _lock
    private readonly EmuTask _task;      // I: ksoftirqd/0
    private TimerList? _running;         // L: _lock (read racily by del_timer_sync)
    private bool _stop;                  // L: _lock

    public TimerBase(IReadOnlyList<int>? cpus)
    {
        _task = new EmuTask("ksoftirqd/0", RunTimerSoftirq, parentPid: 2)
        {
            Flags = TaskFlags.Kthread,
            AllowedCpus = cpus,
        };
        _task.Start();
    }

    public EmuTask Task => _task;

    /// <summary>mod_timer(): (re)arms <paramref name="timer"/> to fire at <paramref name="expires"/>.</summary>
    /// <returns>Whether it was pending before.</returns>
    public bool ModTimer(TimerList timer, long expires)
    {
        bool wasPending;
        bool wake;
        lock (_lock)
        {
            wasPending = timer.PendingLocked;
            timer.Seq++;
            timer.Expires = expires;
            timer.PendingLocked = true;
            _heap.Enqueue((timer, timer.Seq), expires);
            wake = _heap.TryPeek(out _, out long first) && first == expires;
        }

        if (wake)
        {
            Sched.WakeUpProcess(_task);
        }

        return wasPending;
    }

    /// <summary>del_timer(): disarms <paramref name="timer"/>.</summary>
    /// <returns>Whether it was pending (and so will now not run).</returns>
    public bool DelTimer(TimerList timer)
    {
        lock (_lock)
        {
            if (!timer.PendingLocked)
            {
                return false;
            }

            timer.PendingLocked = false;
            timer.Seq++;
            return true;
        }
    }

    /// <summary>del_timer_sync(): disarms <paramref name="timer"/> and waits until its callback is not running.</summary>
    public bool DelTimerSync(TimerList timer)
    {
        bool wasPending = DelTimer(timer);
        var spin = new SpinWait();
        while (Volatile.Read(ref _running) == timer && EmuTask.Current != _task)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }

        return wasPending;
    }

    /// <summary>Stops the softirq thread; armed timers never fire afterwards.</summary>
    public void Stop(int timeoutMs)
    {
        lock (_lock)
        {
            _stop = true;
        }

        Sched.WakeUpProcess(_task);
        if (EmuTask.Current != _task)
        {
            _task.Join(timeoutMs);
        }
    }

    // run_timer_softirq() on ksoftirqd: fire what has expired, then sleep until the next expiry.
    private void RunTimerSoftirq()
    {
        EmuTask task = _task;
        using KFrame f1 = task.Enter("ret_from_fork");
        using KFrame f2 = task.Enter("kthread");
        using KFrame f3 = task.Enter("smpboot_thread_fn");
        while (true)
        {
            TimerList? timer = null;
            long timeout;
            lock (_lock)
            {
                if (_stop)
                {
                    return;
                }

                timeout = Sched.MaxScheduleTimeout;
                while (_heap.TryPeek(out (TimerList Timer, long Seq) entry, out long expires))
                {
                    if (entry.Seq != entry.Timer.Seq || !entry.Timer.PendingLocked)
                    {
                        _heap.Dequeue();
                        continue;
                    }

                    long now = Environment.TickCount64;
                    if (expires > now)
                    {
                        timeout = expires - now;
                        break;
                    }

                    _heap.Dequeue();
                    timer = entry.Timer;
                    timer.PendingLocked = false;
                    Volatile.Write(ref _running, timer);
                    break;
                }

                if (timer is null)
                {
                    // The state is set under the base lock, and ModTimer wakes after its enqueue under the same
                    // lock, so a timer armed between here and schedule() is not missed.
                    Sched.SetCurrentState(TaskState.Interruptible);
                }
            }

            if (timer is null)
            {
                Sched.ScheduleTimeout(timeout);
                continue;
            }

            CallTimerFn(task, timer);
            Volatile.Write(ref _running, null);
        }
    }

    // call_timer_fn(): the callback runs in softirq context, where sleeping is a bug.
    private static void CallTimerFn(EmuTask task, TimerList timer)
    {
        using KFrame frame = task.Enter("run_timer_softirq");
        task.PreemptDisable();
        try
        {
            timer.Function(timer.Data);
        }
        finally
        {
            task.PreemptEnable();
        }
    }
}
