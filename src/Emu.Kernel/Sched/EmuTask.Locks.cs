// task_struct->held_locks: the locks a task holds, in acquisition order (lockdep's held_lock stack), including
// those lockdep never saw (page locks, extent ranges).
// The task records and drops its own entries with plain stores, no lock and no atomic: a kworker does it four
// times per work item. Readers (reports, other tasks) copy the list under a sequence count (seqcount_t) that a
// removal makes odd while it shifts entries, and retry on a change; an append needs no count, as the new entry
// is written before the count that covers it. Other tasks change the list too (a page locked by a reader is
// unlocked by the bio completion; splitting a locked extent range gives its locker a second entry): those
// changes go to a journal under _journalLock, which readers apply to what they copied and which the task folds
// into its list before its own next change.
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

public sealed partial class EmuTask
{
    private HeldSlot[] _held = new HeldSlot[8]; // written by the task only
    private int _heldCount;                     // written by the task only; covers the entries readers may copy
    private int _heldSeq;                       // written by the task only; odd while a removal shifts entries
    private readonly Lock _journalLock = new(); // serializes other tasks' changes, readers and the task's fold
    private HeldOp[] _journal = new HeldOp[4];  // _journalLock: other tasks' changes, oldest first
    private int _journalCount;                  // _journalLock; read racily by the task to skip the fold

    // lock_acquire() from any task: the holder itself appends, another task journals.
    internal void AddHeld(in HeldLock held)
    {
        if (t_current == this)
        {
            AddHeldOwn(held.Lock, held.Class, held.At, held.Read);
        }
        else
        {
            JournalHeld(held, remove: false);
        }
    }

    // lock_release() from any task: removes the most recent entry for lockInstance (release order need not match
    // acquisition order). False if the task holds no such entry.
    internal bool RemoveHeld(IWaitResource lockInstance) =>
        t_current == this ? RemoveHeldOwn(lockInstance) : JournalHeld(new HeldLock(lockInstance, null!, null, false), remove: true);

    // lock_acquire() on the calling task itself.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void AddHeldOwn(IWaitResource lockInstance, LockClass lockClass, string? at, bool read)
    {
        AssertCurrent();
        if (Volatile.Read(ref _journalCount) != 0)
        {
            FoldJournal();
        }

        AddHeldCore(lockInstance, lockClass, at, read);
    }

    // lock_release() on the calling task itself.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal bool RemoveHeldOwn(IWaitResource lockInstance)
    {
        AssertCurrent();
        if (Volatile.Read(ref _journalCount) != 0)
        {
            FoldJournal();
        }

        return RemoveHeldCore(lockInstance);
    }

    // lockdep_depth of the calling task itself.
    internal int HeldCountOwn
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        get
        {
            AssertCurrent();
            if (Volatile.Read(ref _journalCount) != 0)
            {
                FoldJournal();
            }

            return _heldCount;
        }
    }

    internal int HeldCount => t_current == this ? HeldCountOwn : SnapshotHeld().Length;

    // A copy of the list as of one instant: the task's entries, then the journal applied to them.
    internal HeldLock[] SnapshotHeld()
    {
        lock (_journalLock)
        {
            HeldLock[] copy = CopyHeldLocked();
            if (_journalCount == 0)
            {
                return copy;
            }

            var list = new List<HeldLock>(copy);
            for (int i = 0; i < _journalCount; i++)
            {
                HeldOp op = _journal[i];
                if (!op.Remove)
                {
                    list.Add(op.Entry);
                    continue;
                }

                for (int j = list.Count - 1; j >= 0; j--)
                {
                    if (ReferenceEquals(list[j].Lock, op.Entry.Lock))
                    {
                        list.RemoveAt(j);
                        break;
                    }
                }
            }

            return list.ToArray();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AddHeldCore(IWaitResource lockInstance, LockClass lockClass, string? at, bool read)
    {
        int n = _heldCount;
        HeldSlot[] held = _held;
        if (n == held.Length)
        {
            held = GrowHeld(held);
        }

        // Class and "at" repeat from one work item to the next: skipping equal stores skips their GC barriers.
        ref HeldSlot slot = ref held[n];
        Volatile.Write(ref slot.Lock, lockInstance);
        if (!ReferenceEquals(slot.Class, lockClass))
        {
            Volatile.Write(ref slot.Class, lockClass);
        }

        if (!ReferenceEquals(slot.At, at))
        {
            Volatile.Write(ref slot.At, at);
        }

        Volatile.Write(ref slot.Read, read);
        Volatile.Write(ref _heldCount, n + 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool RemoveHeldCore(IWaitResource lockInstance)
    {
        HeldSlot[] held = _held;
        int n = _heldCount;
        for (int i = n - 1; i >= 0; i--)
        {
            if (!ReferenceEquals(held[i].Lock, lockInstance))
            {
                continue;
            }

            // write_seqcount_begin/end around the shift. Every store is a release, so none is seen before the odd
            // count; on x64 they are plain stores.
            int seq = _heldSeq;
            Volatile.Write(ref _heldSeq, seq + 1);
            for (int j = i; j < n - 1; j++)
            {
                ref HeldSlot dst = ref held[j];
                ref HeldSlot src = ref held[j + 1];
                Volatile.Write(ref dst.Lock, src.Lock);
                Volatile.Write(ref dst.Class, src.Class);
                Volatile.Write(ref dst.At, src.At);
                Volatile.Write(ref dst.Read, src.Read);
            }

            // The lock instance may be a page or a range that should not outlive its release; class and function
            // stay for the next append to compare against.
            Volatile.Write(ref held[n - 1].Lock, null);
            Volatile.Write(ref _heldCount, n - 1);
            Volatile.Write(ref _heldSeq, seq + 2);
            return true;
        }

        return false;
    }

    private HeldSlot[] GrowHeld(HeldSlot[] held)
    {
        var grown = new HeldSlot[held.Length * 2];
        held.AsSpan().CopyTo(grown);
        Volatile.Write(ref _held, grown);
        return grown;
    }

    // The task's own entries, copied under the sequence count. The count is read before the array, which the
    // task publishes before any count that needs it. Context: _journalLock (keeps the task from folding).
    private HeldLock[] CopyHeldLocked()
    {
        SpinWait spin = default;
        while (true)
        {
            int seq = Volatile.Read(ref _heldSeq);
            if ((seq & 1) == 0)
            {
                int n = Volatile.Read(ref _heldCount);
                HeldSlot[] held = Volatile.Read(ref _held);
                var copy = new HeldLock[Math.Min(n, held.Length)];
                for (int i = 0; i < copy.Length; i++)
                {
                    ref HeldSlot slot = ref held[i];
                    copy[i] = new HeldLock(
                        Volatile.Read(ref slot.Lock)!, Volatile.Read(ref slot.Class)!, Volatile.Read(ref slot.At), Volatile.Read(ref slot.Read));
                }

                // The acquiring reads above keep this re-read after them (read_seqcount_retry).
                if (Volatile.Read(ref _heldSeq) == seq)
                {
                    return copy;
                }
            }

            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    // Another task's change: journal it for the holder. A removal is journalled only if the entry exists once
    // the journal is applied; one that undoes the latest journalled acquisition of the lock deletes that record
    // instead, so that a holder asleep for long does not collect pairs. Returns whether the change was recorded.
    private bool JournalHeld(in HeldLock entry, bool remove)
    {
        lock (_journalLock)
        {
            if (remove && CountHeldLocked(entry.Lock) == 0)
            {
                return false;
            }

            if (remove && TryUnjournalLatestAddLocked(entry.Lock))
            {
                return true;
            }

            if (_journalCount == _journal.Length)
            {
                Array.Resize(ref _journal, _journal.Length * 2);
            }

            _journal[_journalCount] = new HeldOp(entry, remove);
            Volatile.Write(ref _journalCount, _journalCount + 1);
            return true;
        }
    }

    // Deletes the journal's latest record for lockInstance if it is an acquisition: the entry it adds is then the
    // most recent one for that lock, the one a release removes. Context: _journalLock.
    private bool TryUnjournalLatestAddLocked(IWaitResource lockInstance)
    {
        for (int i = _journalCount - 1; i >= 0; i--)
        {
            if (!ReferenceEquals(_journal[i].Entry.Lock, lockInstance))
            {
                continue;
            }

            if (_journal[i].Remove)
            {
                return false;
            }

            Array.Copy(_journal, i + 1, _journal, i, _journalCount - i - 1);
            _journal[_journalCount - 1] = default;
            Volatile.Write(ref _journalCount, _journalCount - 1);
            return true;
        }

        return false;
    }

    // How many entries for lockInstance the list has with the journal applied, without allocating (an I/O
    // completion unlocking a page comes through here). Context: _journalLock.
    private int CountHeldLocked(IWaitResource lockInstance)
    {
        SpinWait spin = default;
        int count;
        while (true)
        {
            int seq = Volatile.Read(ref _heldSeq);
            if ((seq & 1) == 0)
            {
                int n = Volatile.Read(ref _heldCount);
                HeldSlot[] held = Volatile.Read(ref _held);
                count = 0;
                for (int i = 0; i < Math.Min(n, held.Length); i++)
                {
                    if (ReferenceEquals(Volatile.Read(ref held[i].Lock), lockInstance))
                    {
                        count++;
                    }
                }

                if (Volatile.Read(ref _heldSeq) == seq)
                {
                    break;
                }
            }

            spin.SpinOnce(sleep1Threshold: -1);
        }

        for (int i = 0; i < _journalCount; i++)
        {
            ref HeldOp op = ref _journal[i];
            if (ReferenceEquals(op.Entry.Lock, lockInstance))
            {
                count += op.Remove ? -1 : 1;
            }
        }

        return count;
    }

    // The task applies the journal to its own list; readers, holding the same lock, see either neither or both.
    private void FoldJournal()
    {
        lock (_journalLock)
        {
            for (int i = 0; i < _journalCount; i++)
            {
                ref HeldOp op = ref _journal[i];
                if (op.Remove)
                {
                    RemoveHeldCore(op.Entry.Lock);
                }
                else
                {
                    AddHeldCore(op.Entry.Lock, op.Entry.Class, op.Entry.At, op.Entry.Read);
                }

                op = default;
            }

            Volatile.Write(ref _journalCount, 0);
        }
    }

    // One entry of the task's own list (HeldLock, mutable so that each field is stored on its own).
    private struct HeldSlot
    {
        public IWaitResource? Lock;
        public LockClass? Class;
        public string? At;
        public bool Read;
    }

    // Another task's change to the list: an acquisition (Entry), or a release of Entry.Lock.
    private readonly record struct HeldOp(HeldLock Entry, bool Remove);
}
