// Mirrors: fs/btrfs/extent_io.c (v4.4) extent state tree: __set_extent_bit, __clear_extent_bit,
// wait_extent_bit, lock_extent_bits, try_lock_extent, unlock_extent, test_range_bit, find_delalloc_range,
// find_first_extent_bit, split_state, merge_state, set/clear_state_cb (fs/btrfs/extent_io.h bits).
//
// Model: an io tree is an ordered set of non-overlapping extent_state records {start, end, bits, wq} under
// one spinlock (tree->lock). Setting bits walks the range left to right, splitting states at the range edges
// and filling holes with new states. With exclusive bits (EXTENT_LOCKED for lock_extent_bits) the walk stops
// at the first state that already has them and reports its offset as failed_start, keeping everything it set
// before that point: lock_extent_bits then sleeps on that state's wait queue until nothing in
// [failed_start, end] is LOCKED and resumes from failed_start. So a task waiting in lock_extent_bits holds
// [start, failed_start) the whole time it waits (incremental hold-and-wait, no FIFO). Clearing LOCKED wakes
// every sleeper on the state; states whose bits drop to zero are freed, and adjacent states with equal bits
// merge unless they carry LOCKED/WRITEBACK/BOUNDARY.
// Emu additions: each LOCKED state records the task that set it and is registered in that task's held locks
// (class EXTENT_LOCKED, printed as "extent range [0, 4095] of inode 257"); the record moves with splits and is
// dropped by whichever task clears LOCKED (often an end_io worker), or handed to read I/O when the bio that
// will unlock it is sent (ExtentLockHandOffToIo). Sleepers record the state they wait on, so page locks and
// extent ranges both appear in the wait-for graph.
// Differs: the tree is a sorted array searched by binary search instead of an rb-tree; there are no cached
// extent_state pointers and no GFP masks (allocation never fails); states are garbage collected, not
// refcounted.
//
// Locking legend: L = Lock (tree->lock, a spinlock: never held across a sleep).
using System.Diagnostics;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>Extent state bits (fs/btrfs/extent_io.h, v4.4).</summary>
[Flags]
public enum ExtentBits : uint
{
    /// <summary>No bits.</summary>
    None = 0,

    /// <summary>EXTENT_DIRTY.</summary>
    Dirty = 1u << 0,

    /// <summary>EXTENT_WRITEBACK.</summary>
    Writeback = 1u << 1,

    /// <summary>EXTENT_UPTODATE.</summary>
    Uptodate = 1u << 2,

    /// <summary>The range is locked (lock_extent_bits). EXTENT_LOCKED.</summary>
    Locked = 1u << 3,

    /// <summary>EXTENT_NEW.</summary>
    New = 1u << 4,

    /// <summary>Dirty data with no disk space allocated yet (delayed allocation). EXTENT_DELALLOC.</summary>
    Delalloc = 1u << 5,

    /// <summary>EXTENT_DEFRAG.</summary>
    Defrag = 1u << 6,

    /// <summary>Stops delalloc range merging at this state. EXTENT_BOUNDARY.</summary>
    Boundary = 1u << 9,

    /// <summary>EXTENT_NODATASUM.</summary>
    Nodatasum = 1u << 10,

    /// <summary>EXTENT_DO_ACCOUNTING.</summary>
    DoAccounting = 1u << 11,

    /// <summary>EXTENT_FIRST_DELALLOC.</summary>
    FirstDelalloc = 1u << 12,

    /// <summary>EXTENT_IOBITS: states with these bits never merge.</summary>
    IoBits = Locked | Writeback,

    /// <summary>EXTENT_CTLBITS: control bits, never stored in a state.</summary>
    CtlBits = DoAccounting | FirstDelalloc,
}

/// <summary>One record of an io tree (struct extent_state). Locked states are lock instances for reports.</summary>
public sealed class ExtentState : IWaitResource
{
    internal long Start;         // L: Tree.Lock (read racily by Describe)
    internal long End;           // L: Tree.Lock, inclusive
    internal ExtentBits State;   // L: Tree.Lock
    internal EmuTask? Locker;    // L: Tree.Lock; the task that set EXTENT_LOCKED (read racily by detectors)
    internal string? LockedAt;   // L: Tree.Lock; the function it was locked in
    internal readonly WaitQueueHead Wq = new(); // state->wq: sleepers in wait_extent_bit

    internal ExtentState(ExtentIoTree tree, long start, long end)
    {
        Tree = tree;
        Start = start;
        End = end;
    }

    internal ExtentIoTree Tree { get; }

    /// <inheritdoc />
    public string Describe() => $"extent range [{Volatile.Read(ref Start)}, {Volatile.Read(ref End)}] of inode {Tree.InodeNumber}";

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
        EmuTask? locker = Volatile.Read(ref Locker);
        if (locker is not null)
        {
            holders.Add(locker);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Describe();
}

/// <summary>The range a woken wait_extent_bit() searches again (the detail of SchedPoint.WaitExtentBitWoken).</summary>
/// <param name="InodeNumber">The inode of the io tree.</param>
/// <param name="Start">The start of the state it slept on, which may lie before the range it was asked to wait for.</param>
/// <param name="End">The end of the range asked for (inclusive).</param>
public sealed record ExtentWaitRange(long InodeNumber, long Start, long End);

/// <summary>A snapshot of one extent state, for tests and reports.</summary>
/// <param name="Start">First byte.</param>
/// <param name="End">Last byte (inclusive).</param>
/// <param name="Bits">The state's bits.</param>
/// <param name="Locker">The task that holds it locked, if LOCKED.</param>
public readonly record struct ExtentStateInfo(long Start, long End, ExtentBits Bits, EmuTask? Locker);

/// <summary>Called by the tree under its lock when bits change (btrfs_set_bit_hook / btrfs_clear_bit_hook).</summary>
internal interface IExtentIoTreeHooks
{
    /// <summary>set_state_cb(): <paramref name="bits"/> are about to be set on [start, end].</summary>
    void SetBitHook(long start, long end, ExtentBits oldBits, ExtentBits bits);

    /// <summary>clear_state_cb(): <paramref name="bits"/> are about to be cleared on [start, end].</summary>
    void ClearBitHook(long start, long end, ExtentBits oldBits, ExtentBits bits);
}

/// <summary>struct extent_io_tree: per-inode byte-range state bits, including the range lock.</summary>
public sealed class ExtentIoTree
{
    private const int EEXIST = 17;

    private static readonly LockClass s_lockClass = CreateLockClass();

    internal readonly Lock Lock = new();                  // tree->lock
    private readonly List<ExtentState> _states = new();   // L: sorted by Start, non-overlapping
    private readonly IExtentIoTreeHooks? _hooks;          // I
    private long _dirtyBytes;                             // L

    internal ExtentIoTree(long inodeNumber, IExtentIoTreeHooks? hooks)
    {
        InodeNumber = inodeNumber;
        _hooks = hooks;
    }

    /// <summary>Creates a stand-alone tree (no delalloc accounting hooks), e.g. for tests.</summary>
    public ExtentIoTree(long inodeNumber)
        : this(inodeNumber, null)
    {
    }

    /// <summary>The owning inode's number, for messages.</summary>
    public long InodeNumber { get; }

    /// <summary>tree->dirty_bytes: bytes with EXTENT_DIRTY set.</summary>
    public long DirtyBytes
    {
        get
        {
            lock (Lock)
            {
                return _dirtyBytes;
            }
        }
    }

    /// <summary>
    /// lock_extent_bits(): sets EXTENT_LOCKED (and <paramref name="bits"/>) on [start, end], sleeping
    /// uninterruptibly on each part already locked by someone else while keeping the part locked so far.
    /// </summary>
    public void LockExtentBits(long start, long end, ExtentBits bits = ExtentBits.None)
    {
        EmuTask? task = EmuTask.Current;
        string? at = task?.TopFrame;
        using KFrame frame = KFunc.Enter("lock_extent_bits");
        Sched.Point(SchedPoint.LockExtent);
        while (true)
        {
            if (SetExtentBitCore(start, end, ExtentBits.Locked | bits, ExtentBits.Locked, out long failedStart, task, at) != -EEXIST)
            {
                return;
            }

            WaitExtentBit(failedStart, end, ExtentBits.Locked);
            start = failedStart;
        }
    }

    /// <summary>lock_extent().</summary>
    public void LockExtent(long start, long end) => LockExtentBits(start, end);

    /// <summary>try_lock_extent(): locks [start, end] if no part of it is locked; never sleeps.</summary>
    public bool TryLockExtent(long start, long end)
    {
        EmuTask? task = EmuTask.Current;
        if (SetExtentBitCore(start, end, ExtentBits.Locked, ExtentBits.Locked, out long failedStart, task, task?.TopFrame) != -EEXIST)
        {
            return true;
        }

        if (failedStart > start)
        {
            ClearExtentBit(start, failedStart - 1, ExtentBits.Locked, wake: true, delete: false);
        }

        return false;
    }

    /// <summary>unlock_extent() / unlock_extent_cached(): clears EXTENT_LOCKED on [start, end] and wakes the sleepers.</summary>
    public void UnlockExtent(long start, long end)
    {
        Sched.Point(SchedPoint.UnlockExtent);
        ClearExtentBit(start, end, ExtentBits.Locked, wake: true, delete: false);
    }

    /// <summary>
    /// Emu addition: the locked range [start, end] now belongs to read I/O, whose completion unlocks it (the
    /// kernel records no owner for EXTENT_LOCKED at all). Drops the locker's record, so that a task that has
    /// moved on (an O_DIRECT read falling back to buffered reads, a reader waiting for its page) is not taken for
    /// the holder of a range only its bio will release, and the wait-for graph reports no cycle through it. Locked
    /// states reaching past the range are split at its edges first. Call before the bio can be submitted.
    /// </summary>
    public void ExtentLockHandOffToIo(long start, long end)
    {
        lock (Lock)
        {
            for (int i = FirstEndingAtOrAfter(start); i < _states.Count; i++)
            {
                ExtentState state = _states[i];
                if (state.Start > end)
                {
                    break;
                }

                if ((state.State & ExtentBits.Locked) == 0 || state.Locker is null)
                {
                    continue;
                }

                if (state.Start < start)
                {
                    SplitState(i, start); // the next index holds [start, ...]
                    continue;
                }

                if (state.End > end)
                {
                    SplitState(i, end + 1);
                    state = _states[i];
                }

                EmuTask locker = state.Locker!;
                Volatile.Write(ref state.Locker, null);
                HeldLocks.Released(locker, state);
            }
        }
    }

    /// <summary>set_extent_bit(): sets <paramref name="bits"/> on [start, end] (no exclusive bits).</summary>
    public void SetExtentBit(long start, long end, ExtentBits bits)
    {
        EmuTask? task = EmuTask.Current;
        SetExtentBitCore(start, end, bits, ExtentBits.None, out _, task, task?.TopFrame);
    }

    /// <summary>set_extent_delalloc(): EXTENT_DELALLOC | EXTENT_UPTODATE.</summary>
    public void SetExtentDelalloc(long start, long end) => SetExtentBit(start, end, ExtentBits.Delalloc | ExtentBits.Uptodate);

    /// <summary>set_extent_uptodate().</summary>
    public void SetExtentUptodate(long start, long end) => SetExtentBit(start, end, ExtentBits.Uptodate);

    /// <summary>
    /// clear_extent_bit(): clears <paramref name="bits"/> on [start, end]; with <paramref name="wake"/> wakes
    /// sleepers of each state touched; with <paramref name="delete"/> clears every bit (frees the states).
    /// </summary>
    public void ClearExtentBit(long start, long end, ExtentBits bits, bool wake, bool delete)
    {
        Debug.Assert(start <= end, "empty extent range");
        if (delete)
        {
            bits |= ~ExtentBits.CtlBits;
        }

        lock (Lock)
        {
            long cur = start;
            while (true)
            {
                int i = FirstEndingAtOrAfter(cur);
                if (i == _states.Count)
                {
                    return;
                }

                ExtentState state = _states[i];
                if (state.Start > end)
                {
                    return;
                }

                if ((state.State & bits) == 0)
                {
                    if (state.End >= end)
                    {
                        return;
                    }

                    cur = state.End + 1;
                    continue;
                }

                if (state.Start < cur)
                {
                    SplitState(i, cur);
                    i++;
                }

                if (state.End > end)
                {
                    SplitState(i, end + 1);
                    // Sleepers stay on the original, which now covers the part after the range.
                    if (wake)
                    {
                        WakeUpState(state);
                    }

                    state = _states[i];
                }

                long last = state.End;
                ClearStateBit(i, state, bits, wake);
                if (last >= end)
                {
                    return;
                }

                cur = last + 1;
            }
        }
    }

    /// <summary>clear_extent_dirty(): EXTENT_DIRTY | EXTENT_DELALLOC | EXTENT_DO_ACCOUNTING.</summary>
    public void ClearExtentDirty(long start, long end) =>
        ClearExtentBit(start, end, ExtentBits.Dirty | ExtentBits.Delalloc | ExtentBits.DoAccounting, wake: false, delete: false);

    /// <summary>
    /// test_range_bit(): with <paramref name="filled"/>, whether every byte of [start, end] has all of
    /// <paramref name="bits"/>; without, whether any state in the range has any of them.
    /// </summary>
    public bool TestRangeBit(long start, long end, ExtentBits bits, bool filled)
    {
        lock (Lock)
        {
            long cur = start;
            for (int i = FirstEndingAtOrAfter(start); i < _states.Count; i++)
            {
                ExtentState state = _states[i];
                if (state.Start > end)
                {
                    break;
                }

                if (filled)
                {
                    if (state.Start > cur || (state.State & bits) != bits)
                    {
                        return false;
                    }

                    if (state.End >= end)
                    {
                        return true;
                    }

                    cur = state.End + 1;
                }
                else if ((state.State & bits) != 0)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>
    /// find_delalloc_range(): the first contiguous run of DELALLOC states at or after <paramref name="start"/>,
    /// at most about <paramref name="maxBytes"/> long, stopping at BOUNDARY.
    /// </summary>
    /// <returns>
    /// The number of states found (0 for none). With none found, <paramref name="end"/> is the end of the
    /// non-delalloc state at <paramref name="start"/>, or long.MaxValue when nothing follows.
    /// </returns>
    public int FindDelallocRange(ref long start, out long end, long maxBytes)
    {
        lock (Lock)
        {
            int i = FirstEndingAtOrAfter(start);
            end = long.MaxValue;
            if (i == _states.Count)
            {
                return 0;
            }

            int found = 0;
            long curStart = start;
            long total = 0;
            for (; i < _states.Count; i++)
            {
                ExtentState state = _states[i];
                if (found != 0 && (state.Start != curStart || (state.State & ExtentBits.Boundary) != 0))
                {
                    break;
                }

                if ((state.State & ExtentBits.Delalloc) == 0)
                {
                    if (found == 0)
                    {
                        end = state.End;
                    }

                    break;
                }

                if (found == 0)
                {
                    start = state.Start;
                }

                found++;
                end = state.End;
                curStart = state.End + 1;
                total += state.End - state.Start + 1;
                if (total >= maxBytes)
                {
                    break;
                }
            }

            return found;
        }
    }

    /// <summary>find_first_extent_bit(): the first state at or after <paramref name="start"/> with any of <paramref name="bits"/>.</summary>
    public bool FindFirstExtentBit(long start, ExtentBits bits, out long foundStart, out long foundEnd)
    {
        lock (Lock)
        {
            for (int i = FirstEndingAtOrAfter(start); i < _states.Count; i++)
            {
                ExtentState state = _states[i];
                if ((state.State & bits) != 0)
                {
                    foundStart = state.Start;
                    foundEnd = state.End;
                    return true;
                }
            }
        }

        foundStart = 0;
        foundEnd = 0;
        return false;
    }

    /// <summary>A snapshot of every state, in offset order (for tests and reports).</summary>
    public ExtentStateInfo[] Snapshot()
    {
        lock (Lock)
        {
            var result = new ExtentStateInfo[_states.Count];
            for (int i = 0; i < result.Length; i++)
            {
                ExtentState s = _states[i];
                result[i] = new ExtentStateInfo(s.Start, s.End, s.State, s.Locker);
            }

            return result;
        }
    }

    /// <summary>
    /// wait_extent_bit(): sleeps (TASK_UNINTERRUPTIBLE, on the state's wait queue) until no state in
    /// [start, end] has any of <paramref name="bits"/>.
    /// </summary>
    internal void WaitExtentBit(long start, long end, ExtentBits bits)
    {
        EmuTask task = EmuTask.CurrentOrThrow;
        WaitQueueEntry entry = task.WaitEntry;
        Lock.Enter();
        try
        {
            while (true)
            {
                ExtentState? state = FirstWithBits(start, end, bits);
                if (state is null)
                {
                    return;
                }

                start = state.Start;
                // wait_on_state(): queued under the tree lock, so a clear (which wakes under it) cannot be missed.
                Wait.PrepareToWait(state.Wq, entry, TaskState.Uninterruptible, state);
                Lock.Exit();
                try
                {
                    Sched.Schedule();
                    if (Sched.PointDetailHooked)
                    {
                        Sched.Point(SchedPoint.WaitExtentBitWoken, new ExtentWaitRange(InodeNumber, start, end));
                    }
                }
                finally
                {
                    Lock.Enter();
                }

                Wait.FinishWait(state.Wq, entry);
            }
        }
        finally
        {
            Lock.Exit();
        }
    }

    // __set_extent_bit(): returns 0, or -EEXIST with failedStart when a state in the range has exclusive bits;
    // everything before failedStart keeps the new bits.
    private int SetExtentBitCore(long start, long end, ExtentBits bits, ExtentBits exclusive, out long failedStart, EmuTask? task, string? at)
    {
        Debug.Assert(start <= end, "empty extent range");
        bits &= ~ExtentBits.CtlBits;
        failedStart = 0;
        lock (Lock)
        {
            long cur = start;
            while (true)
            {
                int i = FirstEndingAtOrAfter(cur);
                ExtentState state;
                if (i == _states.Count || _states[i].Start > end)
                {
                    state = InsertState(i, cur, end, bits, task, at);
                }
                else if (_states[i].Start > cur)
                {
                    long holeEnd = Math.Min(end, _states[i].Start - 1);
                    state = InsertState(i, cur, holeEnd, bits, task, at);
                }
                else
                {
                    state = _states[i];
                    if ((state.State & exclusive) != 0)
                    {
                        failedStart = cur;
                        return -EEXIST;
                    }

                    if (state.Start < cur)
                    {
                        SplitState(i, cur);
                        i++;
                    }

                    if (state.End > end)
                    {
                        SplitState(i, end + 1);
                        state = _states[i];
                    }

                    SetStateBits(state, bits, task, at);
                }

                state = MergeState(state);
                if (state.End >= end)
                {
                    return 0;
                }

                cur = state.End + 1;
            }
        }
    }

    private ExtentState InsertState(int index, long start, long end, ExtentBits bits, EmuTask? task, string? at)
    {
        var state = new ExtentState(this, start, end);
        _states.Insert(index, state);
        SetStateBits(state, bits, task, at);
        return state;
    }

    // set_state_bits() + set_state_cb().
    private void SetStateBits(ExtentState state, ExtentBits bits, EmuTask? task, string? at)
    {
        _hooks?.SetBitHook(state.Start, state.End, state.State, bits);
        if ((bits & ExtentBits.Dirty) != 0 && (state.State & ExtentBits.Dirty) == 0)
        {
            _dirtyBytes += state.End - state.Start + 1;
        }

        if ((bits & ExtentBits.Locked) != 0 && (state.State & ExtentBits.Locked) == 0)
        {
            Volatile.Write(ref state.Locker, task);
            state.LockedAt = at;
            if (task is not null)
            {
                HeldLocks.Acquired(task, state, s_lockClass, read: false, at);
            }
        }

        state.State |= bits;
    }

    // clear_state_bit(): clears the bits, wakes sleepers, frees an empty state or merges it.
    private void ClearStateBit(int index, ExtentState state, ExtentBits bits, bool wake)
    {
        ExtentBits toClear = bits & ~ExtentBits.CtlBits;
        _hooks?.ClearBitHook(state.Start, state.End, state.State, toClear);
        if ((toClear & ExtentBits.Dirty) != 0 && (state.State & ExtentBits.Dirty) != 0)
        {
            _dirtyBytes -= state.End - state.Start + 1;
        }

        if ((toClear & ExtentBits.Locked) != 0 && (state.State & ExtentBits.Locked) != 0)
        {
            EmuTask? locker = state.Locker;
            Volatile.Write(ref state.Locker, null);
            state.LockedAt = null;
            if (locker is not null)
            {
                HeldLocks.Released(locker, state);
            }
        }

        state.State &= ~toClear;
        if (wake)
        {
            WakeUpState(state);
        }

        if (state.State == 0)
        {
            _states.RemoveAt(index);
        }
        else
        {
            MergeState(state);
        }
    }

    // split_state(): a new state takes [orig.Start, split - 1]; the original keeps [split, orig.End], its bits
    // and its sleepers. A locked original's holder now holds both pieces.
    private void SplitState(int index, long split)
    {
        ExtentState orig = _states[index];
        Debug.Assert(orig.Start < split && split <= orig.End, "split point outside the state");
        var prealloc = new ExtentState(this, orig.Start, split - 1) { State = orig.State };
        Volatile.Write(ref orig.Start, split);
        _states.Insert(index, prealloc);
        if ((orig.State & ExtentBits.Locked) != 0)
        {
            prealloc.Locker = orig.Locker;
            prealloc.LockedAt = orig.LockedAt;
            if (orig.Locker is not null)
            {
                HeldLocks.Acquired(orig.Locker, prealloc, s_lockClass, read: false, orig.LockedAt);
            }
        }
    }

    // merge_state(): absorbs equal-bit neighbours into the state, unless it carries IO or boundary bits.
    private ExtentState MergeState(ExtentState state)
    {
        if ((state.State & (ExtentBits.IoBits | ExtentBits.Boundary)) != 0)
        {
            return state;
        }

        int i = FirstEndingAtOrAfter(state.Start);
        Debug.Assert(_states[i] == state, "state not in its tree");
        if (i > 0)
        {
            ExtentState prev = _states[i - 1];
            if (prev.End + 1 == state.Start && prev.State == state.State)
            {
                Volatile.Write(ref state.Start, prev.Start);
                _states.RemoveAt(i - 1);
                i--;
            }
        }

        if (i + 1 < _states.Count)
        {
            ExtentState next = _states[i + 1];
            if (state.End + 1 == next.Start && next.State == state.State)
            {
                Volatile.Write(ref state.End, next.End);
                _states.RemoveAt(i + 1);
            }
        }

        return state;
    }

    private static void WakeUpState(ExtentState state)
    {
        // Sleepers queue under the tree lock, which the caller holds, so this check cannot miss one.
        if (state.Wq.Active)
        {
            Wait.WakeUpAll(state.Wq);
        }
    }

    private ExtentState? FirstWithBits(long start, long end, ExtentBits bits)
    {
        for (int i = FirstEndingAtOrAfter(start); i < _states.Count; i++)
        {
            ExtentState state = _states[i];
            if (state.Start > end)
            {
                return null;
            }

            if ((state.State & bits) != 0)
            {
                return state;
            }
        }

        return null;
    }

    // tree_search(): index of the first state whose end is at or after pos (Count if none).
    private int FirstEndingAtOrAfter(long pos)
    {
        int lo = 0;
        int hi = _states.Count;
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            if (_states[mid].End < pos)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private static LockClass CreateLockClass()
    {
        LockClass lockClass = LockClass.Get("EXTENT_LOCKED");
        lockClass.ShowInstance = true;
        return lockClass;
    }
}
