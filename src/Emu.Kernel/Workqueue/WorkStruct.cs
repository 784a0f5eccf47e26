// Mirrors: include/linux/workqueue.h (v4.4) struct work_struct, INIT_WORK, work_pending and the WORK_STRUCT_*
// / WORK_OFFQ_* layout of work->data.
//
// Model: a work item is a function (a delegate cached by its owner, so queueing allocates nothing) with the
// name of the kernel symbol it stands for, an intrusive list entry, and the packed atomic data word:
//   bit 0 PENDING, 1 DELAYED (on pwq->delayed_works), 2 PWQ, 3 LINKED (a barrier follows), 4-7 flush color;
//   while queued (PWQ set) the bits from 8 up hold the pool_workqueue's id; off queue, bit 4 is CANCELING and
//   the bits from 5 up hold the id of the pool the work last ran on (WORK_OFFQ_POOL_NONE if never).
// Whoever sets PENDING owns the work until it is queued (or the bit is cleared); the data word and the entry
// change only under that ownership or under the pool lock, exactly as in the kernel.
// Differs: the kernel stores the pwq pointer itself (pwqs are 256-byte aligned); Emu stores an id that its
// WorkqueueSystem resolves, so a work item belongs to the one WorkqueueSystem it is first queued on. The work
// function pushes its own shadow-stack frame, as every emulated function does; the name given here is what
// print_worker_info shows ("Workqueue: events_unbound wb_workfn").
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>A work function (work_func_t). Cache the delegate: it is called, never allocated, per execution.</summary>
public delegate void WorkFunc(WorkStruct work);

/// <summary>struct work_struct. Derive from it to reach the containing object from the work function (container_of).</summary>
public class WorkStruct
{
    internal const int PendingBit = 0;     // WORK_STRUCT_PENDING_BIT: pending execution
    internal const int DelayedBit = 1;     // WORK_STRUCT_DELAYED_BIT: on pwq->delayed_works
    internal const int PwqBit = 2;         // WORK_STRUCT_PWQ_BIT: data points to a pwq
    internal const int LinkedBit = 3;      // WORK_STRUCT_LINKED_BIT: the next work is linked to this one
    internal const int ColorShift = 4;     // WORK_STRUCT_COLOR_SHIFT
    internal const int ColorBits = 4;      // WORK_STRUCT_COLOR_BITS
    internal const long PendingFlag = 1L << PendingBit; // WORK_STRUCT_PENDING
    internal const long DelayedFlag = 1L << DelayedBit; // WORK_STRUCT_DELAYED
    internal const long PwqFlag = 1L << PwqBit;         // WORK_STRUCT_PWQ
    internal const long LinkedFlag = 1L << LinkedBit;   // WORK_STRUCT_LINKED

    /// <summary>WORK_NR_COLORS (v4.4: the last of the 16 color values is reserved as WORK_NO_COLOR).</summary>
    internal const int NrColors = (1 << ColorBits) - 1;
    internal const int NoColor = NrColors;                       // WORK_NO_COLOR: barriers, not flushed
    internal const int FlagBits = ColorShift + ColorBits;         // WORK_STRUCT_FLAG_BITS
    internal const long FlagMask = (1L << FlagBits) - 1;          // WORK_STRUCT_FLAG_MASK
    internal const int OffqCancelingBit = ColorShift;             // __WORK_OFFQ_CANCELING
    internal const long OffqCanceling = 1L << OffqCancelingBit;   // WORK_OFFQ_CANCELING
    internal const int OffqPoolShift = OffqCancelingBit + 1;      // WORK_OFFQ_POOL_SHIFT
    internal const int OffqPoolNone = int.MaxValue;               // WORK_OFFQ_POOL_NONE (31 bits)
    internal const long NoPool = (long)OffqPoolNone << OffqPoolShift; // WORK_STRUCT_NO_POOL

    internal long Data;                  // atomic (Interlocked/Volatile); see the header for the layout
    internal WorkStruct EntryNext;       // L: pool.Lock of the pool the work is queued on (list_head entry)
    internal WorkStruct EntryPrev;       // L: as EntryNext; both point to the work itself when off every list
    internal WorkqueueSystem? System;    // set by the PENDING owner on first queueing; resolves the ids in Data
    private WorkFunc _func;              // written by INIT_WORK while the work is idle
    private string _funcName;            // as _func

    /// <summary>INIT_WORK(): a work item that runs <paramref name="func"/>.</summary>
    /// <param name="func">The work function; pass a cached delegate (a static method group stored once).</param>
    /// <param name="funcName">The kernel symbol it stands for, e.g. "wb_workfn"; shown in "Workqueue:" lines.</param>
    /// <param name="lockdepName">
    /// Lockdep name of the work's pseudo-lock, as INIT_WORK stringifies its argument, e.g.
    /// "(&amp;work->normal_work)" or "(&amp;(&amp;wb->dwork)->work)".
    /// </param>
    public WorkStruct(WorkFunc func, string funcName, string? lockdepName = null)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentException.ThrowIfNullOrEmpty(funcName);
        _func = func;
        _funcName = funcName;
        Data = NoPool;
        EntryNext = this;
        EntryPrev = this;
        LockdepMap = new LockdepMap(lockdepName ?? "(&work)", reclaimFs: true);
    }

    // A list head (LIST_HEAD): a sentinel that is never queued or run.
    internal WorkStruct()
    {
        _func = null!;
        _funcName = "";
        EntryNext = this;
        EntryPrev = this;
        LockdepMap = null!;
    }

    /// <summary>The work function.</summary>
    public WorkFunc Func => _func;

    /// <summary>The kernel symbol the work function stands for.</summary>
    public string FuncName => _funcName;

    /// <summary>The lockdep class of the work's pseudo-lock, held while the function runs.</summary>
    public LockClass LockClass => LockdepMap.Class;

    /// <summary>work_pending(): queued (or about to be) and not yet started.</summary>
    public bool Pending => (Volatile.Read(ref Data) & PendingFlag) != 0;

    internal LockdepMap LockdepMap { get; }

    /// <summary>
    /// INIT_WORK() on an existing, idle work item: changes its function and forgets where it last ran. Must not
    /// be called while the work is pending or running.
    /// </summary>
    public void InitWork(WorkFunc func, string funcName)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentException.ThrowIfNullOrEmpty(funcName);
        if (Pending)
        {
            ThrowHelper.ThrowInvalidOperation($"INIT_WORK on pending work {FuncName}");
        }

        _func = func;
        _funcName = funcName;
        Volatile.Write(ref Data, NoPool);
    }

    /// <inheritdoc />
    public override string ToString() => FuncName;

    internal static int ColorOf(long data) => (int)(data >> ColorShift) & ((1 << ColorBits) - 1);

    internal static long ColorToFlags(int color) => (long)color << ColorShift;
}

/// <summary>list_head operations on work entries (pool->worklist, pwq->delayed_works, worker->scheduled).</summary>
internal static class WorkList
{
    /// <summary>list_empty().</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Empty(WorkStruct head) => head.EntryNext == head;

    /// <summary>list_add_tail(): inserts <paramref name="entry"/> before <paramref name="pos"/> (at the tail when pos is the head).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddTail(WorkStruct entry, WorkStruct pos)
    {
        WorkStruct prev = pos.EntryPrev;
        entry.EntryNext = pos;
        entry.EntryPrev = prev;
        prev.EntryNext = entry;
        pos.EntryPrev = entry;
    }

    /// <summary>list_del_init().</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DelInit(WorkStruct entry)
    {
        WorkStruct prev = entry.EntryPrev;
        WorkStruct next = entry.EntryNext;
        prev.EntryNext = next;
        next.EntryPrev = prev;
        entry.EntryNext = entry;
        entry.EntryPrev = entry;
    }

    /// <summary>list_move_tail(): unlinks <paramref name="entry"/> and links it at the tail of <paramref name="head"/>.</summary>
    public static void MoveTail(WorkStruct entry, WorkStruct head)
    {
        WorkStruct prev = entry.EntryPrev;
        WorkStruct next = entry.EntryNext;
        prev.EntryNext = next;
        next.EntryPrev = prev;
        AddTail(entry, head);
    }
}

/// <summary>
/// A lockdep map (struct lockdep_map) for the pseudo-locks process_one_work() holds while a work runs: the
/// workqueue's and the work's. Never contended; it only shows in held-lock listings.
/// </summary>
internal sealed class LockdepMap : IWaitResource
{
    public LockdepMap(string name, bool reclaimFs)
    {
        Class = LockClass.Get(name);
        if (reclaimFs)
        {
            Class.ReclaimFs = true;
        }
    }

    public LockClass Class { get; }

    public string Describe() => Class.Name;

    public void AppendHolders(List<EmuTask> holders)
    {
    }
}
