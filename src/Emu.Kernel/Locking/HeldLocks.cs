// Mirrors: kernel/locking/lockdep.c (v4.4) held-lock tracking (lock_acquire/lock_release on
// current->held_locks) and lockdep_print_held_locks().
//
// Model: every lock acquisition is recorded on the acquiring task in order, with its class, read/write, and
// the function it was taken in ("at": the shadow-stack top at acquisition, lockdep's acquire ip). Release
// removes the entry from the holder's list, which may be another task's list (page and extent locks are often
// released by I/O completion). The holder changes its own list without locking; other tasks' changes are
// journalled for it (see EmuTask.Locks.cs). The formatter prints lockdep's listing:
//   3 locks held by fdm-stress/26851:
//    #0:  (&type->s_umount_key#37){+++++.}, at: iterate_supers
// Differs: "at:" prints the function name without address or offset. Locks lockdep never tracked (page
// locks, extent ranges) are recorded too; their classes print the instance ("page 2 of inode 257").
using System.Text;
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>One entry of a task's held-lock list (struct held_lock).</summary>
/// <param name="Lock">The lock instance (also what waiters on it record as <see cref="EmuTask.WaitingOn"/>).</param>
/// <param name="Class">Its lockdep class.</param>
/// <param name="At">The function that took it, or null if unknown.</param>
/// <param name="Read">Held for read (shared).</param>
public readonly record struct HeldLock(IWaitResource Lock, LockClass Class, string? At, bool Read);

/// <summary>lock_acquire / lock_release bookkeeping and the lockdep-style listing.</summary>
public static class HeldLocks
{
    /// <summary>
    /// lock_acquire(): records that <paramref name="task"/> now holds <paramref name="lockInstance"/>.
    /// </summary>
    /// <param name="at">Acquiring function; defaults to the task's shadow-stack top (meaningful when <paramref name="task"/> is current).</param>
    public static void Acquired(EmuTask task, IWaitResource lockInstance, LockClass lockClass, bool read = false, string? at = null)
    {
        lockClass.MarkUsed(read, task.InIrq && task == EmuTask.Current);
        task.AddHeld(new HeldLock(lockInstance, lockClass, at ?? task.TopFrame, read));
    }

    /// <summary>lock_release(): removes the most recent record of <paramref name="lockInstance"/> from <paramref name="task"/>.</summary>
    /// <returns>false if the task had no record of it.</returns>
    public static bool Released(EmuTask task, IWaitResource lockInstance) => task.RemoveHeld(lockInstance);

    // lock_acquire() by a caller that is current (a kworker around each work item): no lookup of current.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AcquiredByCurrent(EmuTask current, IWaitResource lockInstance, LockClass lockClass, bool read, string? at)
    {
        lockClass.MarkUsed(read, current.InIrq);
        current.AddHeldOwn(lockInstance, lockClass, at, read);
    }

    // lock_release() by a caller that is current.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool ReleasedByCurrent(EmuTask current, IWaitResource lockInstance) => current.RemoveHeldOwn(lockInstance);

    // lockdep_depth(current).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int CountOfCurrent(EmuTask current) => current.HeldCountOwn;

    /// <summary>Number of locks <paramref name="task"/> holds (lockdep_depth).</summary>
    public static int Count(EmuTask task) => task.HeldCount;

    /// <summary>A copy of <paramref name="task"/>'s held locks in acquisition order.</summary>
    public static HeldLock[] Snapshot(EmuTask task) => task.SnapshotHeld();

    /// <summary>
    /// lockdep_print_held_locks(): "N locks held by COMM/PID:" and one " #i:  (CLASS){USAGE}, at: FUNC" line
    /// per lock, or "no locks held by COMM/PID.". Lines are separated by '\n', without a trailing newline.
    /// </summary>
    public static string Format(EmuTask task)
    {
        HeldLock[] held = task.SnapshotHeld();
        var sb = new StringBuilder();
        if (held.Length == 0)
        {
            sb.Append("no locks held by ").Append(task.Comm).Append('/').Append(task.Pid).Append('.');
            return sb.ToString();
        }

        sb.Append(held.Length).Append(held.Length == 1 ? " lock held by " : " locks held by ")
          .Append(task.Comm).Append('/').Append(task.Pid).Append(':');
        for (int i = 0; i < held.Length; i++)
        {
            HeldLock h = held[i];
            string name = h.Class.ShowInstance ? h.Lock.Describe() : h.Class.Name;
            sb.Append('\n').Append(" #").Append(i).Append(":  (").Append(name).Append(')')
              .Append(h.Class.Usage).Append(", at: ").Append(h.At ?? "(unknown)");
        }

        return sb.ToString();
    }
}
