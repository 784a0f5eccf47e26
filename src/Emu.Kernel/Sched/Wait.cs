// Mirrors: kernel/sched/wait.c and include/linux/wait.h (v4.4): wait queues, prepare_to_wait/finish_wait,
// __wake_up_common with exclusive waiters, autoremove_wake_function, wait_event.
//
// Model: a WaitQueueHead is a lock and an intrusive list of WaitQueueEntry (one per sleeping task, no
// allocation per wait). prepare_to_wait queues the entry and sets the task state under the queue lock;
// wake_up walks the list, wakes each non-exclusive waiter and up to nr_exclusive exclusive ones, removing the
// woken entries (autoremove). Bit waits (WaitBit) are entries with a key, woken only by wakes for that key.
// Emu addition: prepare_to_wait also records on the task what it waits on (an IWaitResource: the one passed
// in, else the queue's Resource), and finish_wait clears it, so detectors always know what a sleeper waits for.
using System.Diagnostics;

namespace Emu.Kernel;

/// <summary>A wait queue (wait_queue_head_t).</summary>
public sealed class WaitQueueHead
{
    internal readonly Lock Lock = new(); // wq->lock
    private WaitQueueEntry? _first;       // L: Lock (read unlocked by Active)
    private WaitQueueEntry? _last;        // L: Lock

    /// <param name="resource">What sleeping on this queue means, for sleeps that name nothing more specific.</param>
    public WaitQueueHead(IWaitResource? resource = null) => Resource = resource;

    /// <summary>The default <see cref="EmuTask.WaitingOn"/> of tasks sleeping here.</summary>
    public IWaitResource? Resource { get; set; }

    /// <summary>
    /// waitqueue_active(): whether anyone is queued. Unlocked: only meaningful after a full barrier that orders
    /// the caller's condition change before it (the waker side of the lost-wakeup protocol).
    /// </summary>
    public bool Active => Volatile.Read(ref _first) is not null;

    // __add_wait_queue()
    internal void AddLocked(WaitQueueEntry entry)
    {
        Debug.Assert(entry.Head is null, "entry already queued");
        entry.Head = this;
        entry.Prev = null;
        entry.Next = _first;
        if (_first is null)
        {
            _last = entry;
        }
        else
        {
            _first.Prev = entry;
        }

        Volatile.Write(ref _first, entry);
    }

    // __add_wait_queue_tail()
    internal void AddTailLocked(WaitQueueEntry entry)
    {
        Debug.Assert(entry.Head is null, "entry already queued");
        entry.Head = this;
        entry.Next = null;
        entry.Prev = _last;
        if (_last is null)
        {
            Volatile.Write(ref _first, entry);
        }
        else
        {
            _last.Next = entry;
        }

        _last = entry;
    }

    // list_del_init()
    internal void RemoveLocked(WaitQueueEntry entry)
    {
        Debug.Assert(entry.Head == this, "entry queued elsewhere");
        if (entry.Prev is null)
        {
            Volatile.Write(ref _first, entry.Next);
        }
        else
        {
            entry.Prev.Next = entry.Next;
        }

        if (entry.Next is null)
        {
            _last = entry.Prev;
        }
        else
        {
            entry.Next.Prev = entry.Prev;
        }

        entry.Prev = null;
        entry.Next = null;
        entry.Head = null;
    }

    // __wake_up_common(): wakes every matching non-exclusive waiter and nrExclusive exclusive ones (0 = all).
    // A waiter counts against nrExclusive only if it was actually woken.
    internal void WakeUpLocked(TaskState mode, int nrExclusive, object? keyOwner, int keyBit)
    {
        WaitQueueEntry? curr = _first;
        while (curr is not null)
        {
            WaitQueueEntry? next = curr.Next;
            if (curr.KeyOwner is not null && (!ReferenceEquals(curr.KeyOwner, keyOwner) || curr.KeyBit != keyBit))
            {
                curr = next; // wake_bit_function(): a wake for another bit hashed to this queue
                continue;
            }

            if (Sched.TryToWakeUp(curr.Task, mode))
            {
                RemoveLocked(curr);
                if (curr.Exclusive && --nrExclusive == 0)
                {
                    break;
                }
            }

            curr = next;
        }
    }
}

/// <summary>One task's place on a wait queue (wait_queue_t). See <see cref="EmuTask.WaitEntry"/>.</summary>
public sealed class WaitQueueEntry
{
    /// <summary>Creates an entry for <paramref name="task"/>.</summary>
    public WaitQueueEntry(EmuTask task) => Task = task ?? throw new ArgumentNullException(nameof(task));

    /// <summary>The task this entry wakes.</summary>
    public EmuTask Task { get; }

    /// <summary>Whether the entry is on a queue (!list_empty_careful).</summary>
    public bool IsQueued => Volatile.Read(ref Head) is not null;

    internal WaitQueueHead? Head;  // L: Head.Lock
    internal WaitQueueEntry? Prev; // L: Head.Lock
    internal WaitQueueEntry? Next; // L: Head.Lock
    internal bool Exclusive;       // WQ_FLAG_EXCLUSIVE; set by the task under the queue lock
    internal object? KeyOwner;     // wait_bit_key.flags: the object whose flags word holds the bit; null for plain waits
    internal int KeyBit;           // wait_bit_key.bit_nr
}

/// <summary>prepare_to_wait / finish_wait / wake_up / wait_event.</summary>
public static class Wait
{
    /// <summary>
    /// prepare_to_wait(): queues the current task's <paramref name="entry"/> (if not yet queued) and sets its
    /// state. Then check the condition and call <see cref="Sched.Schedule"/> if it is still false.
    /// </summary>
    /// <param name="resource">What the task waits for; defaults to <see cref="WaitQueueHead.Resource"/>.</param>
    public static void PrepareToWait(WaitQueueHead wq, WaitQueueEntry entry, TaskState state, IWaitResource? resource = null) =>
        Prepare(wq, entry, state, exclusive: false, keyOwner: null, keyBit: 0, resource);

    /// <summary>prepare_to_wait_exclusive(): as <see cref="PrepareToWait"/>, queued at the tail as an exclusive waiter.</summary>
    public static void PrepareToWaitExclusive(WaitQueueHead wq, WaitQueueEntry entry, TaskState state, IWaitResource? resource = null) =>
        Prepare(wq, entry, state, exclusive: true, keyOwner: null, keyBit: 0, resource);

    /// <summary>finish_wait(): sets the task running and dequeues the entry if a waker has not already.</summary>
    public static void FinishWait(WaitQueueHead wq, WaitQueueEntry entry)
    {
        EmuTask task = entry.Task;
        task.SetStateRelaxed(TaskState.Running);
        if (entry.IsQueued)
        {
            lock (wq.Lock)
            {
                if (entry.Head is not null)
                {
                    wq.RemoveLocked(entry);
                }
            }
        }

        task.SetWaitingOn(null);
    }

    /// <summary>wake_up(): wakes all non-exclusive waiters and one exclusive waiter.</summary>
    public static void WakeUp(WaitQueueHead wq) => WakeUpCommon(wq, TaskState.Normal, 1);

    /// <summary>wake_up_nr(): wakes all non-exclusive waiters and <paramref name="nr"/> exclusive ones.</summary>
    public static void WakeUpNr(WaitQueueHead wq, int nr) => WakeUpCommon(wq, TaskState.Normal, nr);

    /// <summary>wake_up_all(): wakes every waiter.</summary>
    public static void WakeUpAll(WaitQueueHead wq) => WakeUpCommon(wq, TaskState.Normal, 0);

    /// <summary>
    /// wait_event() / wait_event_interruptible() / wait_event_idle(): sleeps in <paramref name="taskState"/>
    /// until <paramref name="condition"/>(<paramref name="state"/>) is true. Pass a static lambda and its state to
    /// avoid a closure. The condition is checked after the task is queued, so a wake_up() after the condition
    /// becomes true is never lost.
    /// </summary>
    public static void WaitEvent<TState>(
        WaitQueueHead wq,
        Func<TState, bool> condition,
        TState state,
        TaskState taskState = TaskState.Uninterruptible,
        IWaitResource? resource = null)
    {
        if (condition(state))
        {
            return;
        }

        WaitEventSlow(wq, condition, state, taskState, resource);
    }

    /// <summary>
    /// wait_event_timeout(): as <see cref="WaitEvent{TState}"/>, giving up after <paramref name="timeoutMs"/>.
    /// </summary>
    /// <returns>0 if the timeout elapsed with the condition false, else the ms left (at least 1).</returns>
    public static long WaitEventTimeout<TState>(
        WaitQueueHead wq,
        Func<TState, bool> condition,
        TState state,
        long timeoutMs,
        TaskState taskState = TaskState.Uninterruptible,
        IWaitResource? resource = null)
    {
        if (condition(state))
        {
            return Math.Max(timeoutMs, 1);
        }

        EmuTask task = CurrentTask();
        WaitQueueEntry entry = task.WaitEntry;
        long left = timeoutMs;
        while (true)
        {
            PrepareToWait(wq, entry, taskState, resource);
            if (condition(state))
            {
                left = Math.Max(left, 1);
                break;
            }

            left = Sched.ScheduleTimeout(left);
            if (left == 0)
            {
                left = condition(state) ? 1 : 0;
                break;
            }
        }

        FinishWait(wq, entry);
        return left;
    }

    internal static void Prepare(
        WaitQueueHead wq, WaitQueueEntry entry, TaskState state, bool exclusive, object? keyOwner, int keyBit, IWaitResource? resource)
    {
        EmuTask task = entry.Task;
        Debug.Assert(task == EmuTask.Current, "prepare_to_wait is for the current task's own entry");
        lock (wq.Lock)
        {
            Debug.Assert(entry.Head is null || entry.Head == wq, "a task waits on one queue at a time");
            if (entry.Head is null)
            {
                entry.Exclusive = exclusive;
                entry.KeyOwner = keyOwner;
                entry.KeyBit = keyBit;
                if (exclusive)
                {
                    wq.AddTailLocked(entry);
                }
                else
                {
                    wq.AddLocked(entry);
                }
            }

            task.SetStateBarrier(state);
        }

        task.SetWaitingOn(resource ?? wq.Resource);
    }

    internal static void WakeUpCommon(WaitQueueHead wq, TaskState mode, int nrExclusive)
    {
        lock (wq.Lock)
        {
            wq.WakeUpLocked(mode, nrExclusive, null, 0);
        }
    }

    internal static EmuTask CurrentTask()
    {
        EmuTask? task = EmuTask.Current;
        if (task is null)
        {
            ThrowHelper.ThrowNotATask("a sleeping wait");
        }

        return task;
    }

    private static void WaitEventSlow<TState>(
        WaitQueueHead wq, Func<TState, bool> condition, TState state, TaskState taskState, IWaitResource? resource)
    {
        EmuTask task = CurrentTask();
        WaitQueueEntry entry = task.WaitEntry;
        while (true)
        {
            PrepareToWait(wq, entry, taskState, resource);
            if (condition(state))
            {
                break;
            }

            Sched.Schedule();
        }

        FinishWait(wq, entry);
    }
}
