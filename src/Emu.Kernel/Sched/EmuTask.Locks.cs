// task_struct->held_locks: the locks a task holds, in acquisition order (lockdep's held_lock stack), including
// those lockdep never saw (page locks, extent ranges). Another task may release an entry (a page locked by a
// reader and unlocked by the bio completion), so the list has its own lock.
namespace Emu.Kernel;

public sealed partial class EmuTask
{
    private readonly Lock _heldLock = new();
    private HeldLock[] _held = new HeldLock[8]; // L: _heldLock
    private int _heldCount;                     // L: _heldLock

    internal void AddHeld(in HeldLock held)
    {
        lock (_heldLock)
        {
            if (_heldCount == _held.Length)
            {
                Array.Resize(ref _held, _held.Length * 2);
            }

            _held[_heldCount++] = held;
        }
    }

    // Removes the most recent entry for lockInstance; lock release order need not match acquisition order.
    internal bool RemoveHeld(IWaitResource lockInstance)
    {
        lock (_heldLock)
        {
            for (int i = _heldCount - 1; i >= 0; i--)
            {
                if (ReferenceEquals(_held[i].Lock, lockInstance))
                {
                    Array.Copy(_held, i + 1, _held, i, _heldCount - i - 1);
                    _held[--_heldCount] = default;
                    return true;
                }
            }

            return false;
        }
    }

    internal int HeldCount
    {
        get
        {
            lock (_heldLock)
            {
                return _heldCount;
            }
        }
    }

    internal HeldLock[] SnapshotHeld()
    {
        lock (_heldLock)
        {
            return _held.AsSpan(0, _heldCount).ToArray();
        }
    }
}
