// Mirrors: fs/btrfs/async-thread.c and async-thread.h (v4.4): struct btrfs_workqueue / __btrfs_workqueue,
// struct btrfs_work, BTRFS_WORK_HELPER, btrfs_alloc_workqueue, thresh_queue_hook / thresh_exec_hook,
// run_ordered_work, normal_work_helper, btrfs_init_work, btrfs_queue_work, btrfs_destroy_workqueue,
// btrfs_workqueue_set_max, btrfs_set_work_high_priority.
//
// Model: a btrfs workqueue wraps one kernel workqueue, "btrfs-NAME" (plus "btrfs-NAME-high" with
// WQ_HIGHPRI), and adds two things. Thresholding: with thresh >= 32 (0 means 32) the kernel workqueue starts
// at max_active 1; every queued item counts as pending until it starts, and every thresh/4-th start (the others
// are skipped) raises max_active by one while more than thresh are pending, or lowers it while fewer than
// thresh/2 are, within [1, limit_active] - so btrfs-flush_delalloc runs one item at a time until more than 32
// wait and another one starts. Below 32 there is no thresholding: max_active is limit_active. Ordered
// completion: items with an ordered_func are also appended to the queue's ordered list; after an item's func
// returns, whichever worker finds the head of that list done runs the ordered_funcs of the done prefix in
// queueing order, then ordered_free.
// Every btrfs workqueue has its own entry function (btrfs_<name>_helper), so workqueue non-reentrancy (work
// address plus function) cannot confuse a recycled btrfs_work queued on another workqueue; they are named in
// "Workqueue:" lines and call traces. The compiler folded their identical bodies into the last one, so a
// trace shows btrfs_flush_delalloc_helper calling btrfs_scrubparity_helper: Emu pushes both frames.
// Locking legend: I set at init; T ThresLock (thres_lock); O ListLock (list_lock); W the BtrfsWork's owner
// (written before queueing).
// Differs: the func, ordered_func and ordered_free are delegates cached by the caller; the helper is named by
// its symbol and must be one of the v4.4 BTRFS_WORK_HELPERs.
using System.Collections.Frozen;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>
/// struct btrfs_work. Derive from it to reach the containing object (container_of) from the functions.
/// Initialise it with <see cref="AsyncThread.BtrfsInitWork"/> before every queueing.
/// </summary>
public class BtrfsWork
{
    internal const int WorkDoneBit = 0;       // WORK_DONE_BIT: func returned
    internal const int WorkOrderDoneBit = 1;  // WORK_ORDER_DONE_BIT: ordered_func claimed
    internal const int WorkHighPrioBit = 2;   // WORK_HIGH_PRIO_BIT: goes to the -high workqueue

    internal long Flags;                        // atomic bit operations
    internal Action<BtrfsWork>? Func;           // W
    internal Action<BtrfsWork>? OrderedFunc;    // W
    internal Action<BtrfsWork>? OrderedFree;    // W
    internal __BtrfsWorkqueue? Wq;              // W: set by btrfs_queue_work
    internal readonly LinkedListNode<BtrfsWork> OrderedNode; // O: entry on wq->ordered_list
    private NormalWorkStruct? _normalWork;      // W: created by the first btrfs_init_work

    /// <summary>An uninitialised btrfs work.</summary>
    public BtrfsWork() => OrderedNode = new LinkedListNode<BtrfsWork>(this);

    /// <summary>work->normal_work: the kernel work item queued on the kernel workqueue.</summary>
    public WorkStruct NormalWork =>
        _normalWork ?? throw new InvalidOperationException("btrfs_work used before btrfs_init_work");

    // INIT_WORK(&work->normal_work, uniq_func).
    internal void InitNormalWork(BtrfsWorkHelper helper)
    {
        if (_normalWork is null)
        {
            _normalWork = new NormalWorkStruct(this, helper);
        }
        else
        {
            _normalWork.InitWork(helper.Func, helper.Name);
        }
    }

    private sealed class NormalWorkStruct(BtrfsWork owner, BtrfsWorkHelper helper)
        : WorkStruct(helper.Func, helper.Name, "(&work->normal_work)")
    {
        public BtrfsWork Owner { get; } = owner;
    }

    internal static BtrfsWork FromNormalWork(WorkStruct work) => ((NormalWorkStruct)work).Owner;
}

/// <summary>struct btrfs_workqueue: a normal and, with WQ_HIGHPRI, a high-priority queue.</summary>
public sealed class BtrfsWorkqueue
{
    internal BtrfsWorkqueue(__BtrfsWorkqueue normal, __BtrfsWorkqueue? high)
    {
        Normal = normal;
        High = high;
    }

    /// <summary>The kernel workqueue "btrfs-NAME".</summary>
    public Workqueue NormalWq => Normal.NormalWq;

    /// <summary>The kernel workqueue "btrfs-NAME-high", or null without WQ_HIGHPRI.</summary>
    public Workqueue? HighWq => High?.NormalWq;

    /// <summary>current_active of the normal queue: the max_active the thresholding has set.</summary>
    public int CurrentActive => Normal.CurrentActiveSnapshot;

    /// <summary>limit_active: the ceiling of <see cref="CurrentActive"/>.</summary>
    public int LimitActive => Volatile.Read(ref Normal.LimitActive);

    /// <summary>thresh of the normal queue, or -1 (NO_THRESHOLD) when thresholding is off.</summary>
    public int Thresh => Normal.Thresh;

    /// <summary>Items queued on the normal queue and not yet started (counted only with thresholding).</summary>
    public int Pending => Volatile.Read(ref Normal.Pending);

    internal __BtrfsWorkqueue Normal { get; }

    internal __BtrfsWorkqueue? High { get; }

    /// <inheritdoc />
    public override string ToString() => NormalWq.Name;
}

/// <summary>struct __btrfs_workqueue: one kernel workqueue with thresholding and an ordered list.</summary>
internal sealed class __BtrfsWorkqueue
{
    internal const int NoThreshold = -1;  // NO_THRESHOLD
    internal const int DftThreshold = 32; // DFT_THRESHOLD

    internal readonly Workqueue NormalWq;                       // I
    internal readonly LinkedList<BtrfsWork> OrderedList = new(); // O
    internal readonly Lock ListLock = new();                    // list_lock
    internal readonly Lock ThresLock = new();                   // thres_lock
    internal readonly int Thresh;                               // I
    internal int Pending;                                       // atomic
    internal int LimitActive;                                   // T (written by btrfs_workqueue_set_max)
    private int _currentActive;                                 // T
    private int _count;                                         // T

    // __btrfs_alloc_workqueue()
    internal __BtrfsWorkqueue(WorkqueueSystem system, string name, WqFlags flags, int limitActive, int thresh)
    {
        LimitActive = limitActive;
        if (thresh == 0)
        {
            thresh = DftThreshold;
        }

        // For a low threshold, no thresholding is the better choice.
        if (thresh < DftThreshold)
        {
            _currentActive = limitActive;
            Thresh = NoThreshold;
        }
        else
        {
            // Let the concurrency grow on demand, from the minimum.
            _currentActive = 1;
            Thresh = thresh;
        }

        NormalWq = (flags & WqFlags.Highpri) != 0
            ? system.AllocWorkqueue($"btrfs-{name}-high", flags, _currentActive, "\"%s-%s-high\"\"btrfs\", name")
            : system.AllocWorkqueue($"btrfs-{name}", flags, _currentActive, "\"%s-%s\"\"btrfs\", name");
    }

    internal int CurrentActiveSnapshot
    {
        get
        {
            lock (ThresLock)
            {
                return _currentActive;
            }
        }
    }

    // thresh_queue_hook(): may run in irq context, so it only counts.
    internal void ThreshQueueHook()
    {
        if (Thresh == NoThreshold)
        {
            return;
        }

        Interlocked.Increment(ref Pending);
    }

    // thresh_exec_hook(): before an item runs, in the worker; may change max_active.
    internal void ThreshExecHook()
    {
        if (Thresh == NoThreshold)
        {
            return;
        }

        Interlocked.Decrement(ref Pending);
        bool needChange = false;
        int newCurrentActive;
        lock (ThresLock)
        {
            // count limits how often workqueue_set_max_active is called: skip every (thresh/4)-th start.
            _count = (_count + 1) % (Thresh / 4);
            if (_count == 0)
            {
                return;
            }

            newCurrentActive = _currentActive;
            // pending may change meanwhile; it need not be exact.
            int pending = Volatile.Read(ref Pending);
            if (pending > Thresh)
            {
                newCurrentActive++;
            }

            if (pending < Thresh / 2)
            {
                newCurrentActive--;
            }

            newCurrentActive = Math.Clamp(newCurrentActive, 1, LimitActive);
            if (newCurrentActive != _currentActive)
            {
                needChange = true;
                _currentActive = newCurrentActive;
            }
        }

        if (needChange)
        {
            NormalWq.WorkqueueSetMaxActive(newCurrentActive);
        }
    }

    // run_ordered_work(): run the ordered_funcs of the done prefix of the ordered list, in order.
    internal void RunOrderedWork()
    {
        while (true)
        {
            BtrfsWork work;
            lock (ListLock)
            {
                LinkedListNode<BtrfsWork>? first = OrderedList.First;
                if (first is null)
                {
                    return;
                }

                work = first.Value;
                if (!Bitops.TestBit(ref work.Flags, BtrfsWork.WorkDoneBit))
                {
                    return;
                }

                // The item stays on the list while its ordered_func runs, as a barrier: later items that are
                // done must not have theirs called before this one returns.
                if (Bitops.TestAndSetBit(ref work.Flags, BtrfsWork.WorkOrderDoneBit))
                {
                    return;
                }
            }

            work.OrderedFunc!(work);

            lock (ListLock)
            {
                OrderedList.Remove(work.OrderedNode);
            }

            // Not under the lock: ordered_free may free the structure.
            work.OrderedFree!(work);
        }
    }

    // __btrfs_queue_work()
    internal void QueueWork(BtrfsWork work)
    {
        work.Wq = this;
        ThreshQueueHook();
        if (work.OrderedFunc is not null)
        {
            lock (ListLock)
            {
                OrderedList.AddLast(work.OrderedNode);
            }
        }

        NormalWq.QueueWork(work.NormalWork);
    }
}

/// <summary>
/// A BTRFS_WORK_HELPER entry function: the kernel work function of every btrfs_work queued on one btrfs
/// workqueue (btrfs_flush_delalloc_helper, btrfs_endio_write_helper, ...).
/// </summary>
internal sealed class BtrfsWorkHelper
{
    // The helper whose body the compiler kept; the others jump into it (see the header).
    internal const string FoldedHelper = "btrfs_scrubparity_helper";

    private BtrfsWorkHelper(string name)
    {
        Name = name;
        Func = Run; // one delegate per helper: distinct work functions for find_worker_executing_work
    }

    public string Name { get; }

    public WorkFunc Func { get; }

    // Every BTRFS_WORK_HELPER of v4.4.
    public static readonly FrozenDictionary<string, BtrfsWorkHelper> All = new[]
    {
        "worker_helper", "delalloc_helper", "flush_delalloc_helper", "cache_helper", "submit_helper",
        "fixup_helper", "endio_helper", "endio_meta_helper", "endio_meta_write_helper", "endio_raid56_helper",
        "endio_repair_helper", "rmw_helper", "endio_write_helper", "freespace_write_helper",
        "delayed_meta_helper", "readahead_helper", "qgroup_rescan_helper", "extent_refs_helper", "scrub_helper",
        "scrubwrc_helper", "scrubnc_helper", "scrubparity_helper",
    }.ToFrozenDictionary(h => "btrfs_" + h, h => new BtrfsWorkHelper("btrfs_" + h));

    private void Run(WorkStruct arg)
    {
        using KFrame helper = KFunc.Enter(Name);
        using KFrame folded = Name == FoldedHelper ? default : KFunc.Enter(FoldedHelper);
        AsyncThread.NormalWorkHelper(BtrfsWork.FromNormalWork(arg));
    }
}

/// <summary>fs/btrfs/async-thread.c.</summary>
public static class AsyncThread
{
    /// <summary>btrfs_alloc_workqueue(): "btrfs-NAME" (and "btrfs-NAME-high" with WQ_HIGHPRI).</summary>
    /// <param name="system">The workqueue subsystem.</param>
    /// <param name="name">The btrfs name, e.g. "flush_delalloc".</param>
    /// <param name="flags">Kernel workqueue flags (btrfs uses WQ_MEM_RECLAIM | WQ_FREEZABLE | WQ_UNBOUND).</param>
    /// <param name="limitActive">The most items that may run at once.</param>
    /// <param name="thresh">Pending items that make max_active grow; 0 for 32; below 32 disables thresholding.</param>
    public static BtrfsWorkqueue BtrfsAllocWorkqueue(WorkqueueSystem system, string name, WqFlags flags, int limitActive, int thresh)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limitActive);
        var normal = new __BtrfsWorkqueue(system, name, flags & ~WqFlags.Highpri, limitActive, thresh);
        __BtrfsWorkqueue? high = null;
        if ((flags & WqFlags.Highpri) != 0)
        {
            high = new __BtrfsWorkqueue(system, name, flags, limitActive, thresh);
        }

        return new BtrfsWorkqueue(normal, high);
    }

    /// <summary>
    /// btrfs_init_work(): sets the work's functions and makes its normal_work run <paramref name="helper"/>,
    /// the entry function of the workqueue it will be queued on.
    /// </summary>
    /// <param name="work">The work; idle (not pending).</param>
    /// <param name="helper">A BTRFS_WORK_HELPER symbol, e.g. "btrfs_flush_delalloc_helper".</param>
    /// <param name="func">The work function (a cached delegate).</param>
    /// <param name="orderedFunc">Run in queueing order after func, or null for unordered work.</param>
    /// <param name="orderedFree">Run after orderedFunc; required with it.</param>
    /// <exception cref="ArgumentException">An unknown helper, or orderedFunc without orderedFree.</exception>
    public static void BtrfsInitWork(BtrfsWork work, string helper, Action<BtrfsWork> func, Action<BtrfsWork>? orderedFunc, Action<BtrfsWork>? orderedFree)
    {
        ArgumentNullException.ThrowIfNull(work);
        ArgumentNullException.ThrowIfNull(func);
        if (!BtrfsWorkHelper.All.TryGetValue(helper, out BtrfsWorkHelper? entry))
        {
            throw new ArgumentException($"{helper} is not a BTRFS_WORK_HELPER of v4.4", nameof(helper));
        }

        if (orderedFunc is not null && orderedFree is null)
        {
            throw new ArgumentException("an ordered work needs ordered_free", nameof(orderedFree));
        }

        work.Func = func;
        work.OrderedFunc = orderedFunc;
        work.OrderedFree = orderedFree;
        work.InitNormalWork(entry);
        Volatile.Write(ref work.Flags, 0);
    }

    /// <summary>btrfs_queue_work(): queues on the high queue if the work asked for it and there is one.</summary>
    public static void BtrfsQueueWork(BtrfsWorkqueue wq, BtrfsWork work)
    {
        __BtrfsWorkqueue destWq = Bitops.TestBit(ref work.Flags, BtrfsWork.WorkHighPrioBit) && wq.High is not null
            ? wq.High
            : wq.Normal;
        destWq.QueueWork(work);
    }

    /// <summary>btrfs_set_work_high_priority().</summary>
    public static void BtrfsSetWorkHighPriority(BtrfsWork work) => Bitops.SetBit(ref work.Flags, BtrfsWork.WorkHighPrioBit);

    /// <summary>
    /// btrfs_destroy_workqueue(): destroys the kernel workqueues, running what is still queued. Sleeps; call
    /// from an emulated task.
    /// </summary>
    public static void BtrfsDestroyWorkqueue(BtrfsWorkqueue? wq)
    {
        if (wq is null)
        {
            return;
        }

        wq.High?.NormalWq.DestroyWorkqueue();
        wq.Normal.NormalWq.DestroyWorkqueue();
    }

    /// <summary>btrfs_workqueue_set_max(): changes limit_active (the thresholding ceiling) of both queues.</summary>
    public static void BtrfsWorkqueueSetMax(BtrfsWorkqueue? wq, int limitActive)
    {
        if (wq is null)
        {
            return;
        }

        Volatile.Write(ref wq.Normal.LimitActive, limitActive);
        if (wq.High is not null)
        {
            Volatile.Write(ref wq.High.LimitActive, limitActive);
        }
    }

    // normal_work_helper(): thresholding, func, then the ordered part. Touch nothing of the work after func
    // unless it is ordered (func may free it), nor after WORK_DONE is set (another worker may free it).
    internal static void NormalWorkHelper(BtrfsWork work)
    {
        bool needOrder = work.OrderedFunc is not null;
        __BtrfsWorkqueue wq = work.Wq!;
        wq.ThreshExecHook();
        work.Func!(work);
        if (needOrder)
        {
            Bitops.SetBit(ref work.Flags, BtrfsWork.WorkDoneBit);
            wq.RunOrderedWork();
        }
    }
}
