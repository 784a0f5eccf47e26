// Mirrors: kernel/locking/lockdep.c (v4.4) lock classes and their usage string.
//
// Model: every lock belongs to a class named as lockdep names it ("&root->ordered_extent_mutex"); one class
// per name, shared by every instance (lockdep keys a class by its init site, which for Emu's purposes is the
// name). A class records how it has been acquired (write/read, process or irq context) and prints that as
// lockdep's usage string "{+.+...}".
// Differs: lockdep computes the third pair of characters (RECLAIM_FS) from observed reclaim; Emu does not model
// memory reclaim, so a class declares it with ReclaimFs. Classes with ShowInstance set (page locks, extent
// ranges: invisible to lockdep) are printed by instance ("page 2 of inode 257") rather than by class name.
using System.Collections.Concurrent;

namespace Emu.Kernel;

/// <summary>A lockdep lock class.</summary>
public sealed class LockClass
{
    private const int UsedWrite = 1 << 0;    // LOCK_ENABLED_HARDIRQ and _SOFTIRQ: taken for write in process context
    private const int UsedRead = 1 << 1;     // LOCK_ENABLED_HARDIRQ_READ and _SOFTIRQ_READ
    private const int UsedInIrqWrite = 1 << 2; // LOCK_USED_IN_HARDIRQ
    private const int UsedInIrqRead = 1 << 3;  // LOCK_USED_IN_HARDIRQ_READ

    private static readonly ConcurrentDictionary<string, LockClass> s_classes = new(StringComparer.Ordinal);

    private int _usage; // Interlocked: UsedWrite | UsedRead | UsedInIrq*

    private LockClass(string name) => Name = name;

    /// <summary>The class for <paramref name="name"/>, created on first use.</summary>
    public static LockClass Get(string name) => s_classes.GetOrAdd(name, static n => new LockClass(n));

    /// <summary>Lockdep's name for the class, e.g. "&amp;fs_info->subvol_sem".</summary>
    public string Name { get; }

    /// <summary>
    /// Whether the class is taken where filesystem reclaim may run (lockdep's RECLAIM_FS usage, which Emu does
    /// not observe). Affects only the usage string.
    /// </summary>
    public bool ReclaimFs { get; set; }

    /// <summary>
    /// Print held instances by their own description rather than the class name (for locks lockdep cannot see:
    /// page locks, extent ranges).
    /// </summary>
    public bool ShowInstance { get; set; }

    /// <summary>Lockdep's usage string, e.g. "{+.+...}" for a mutex only ever taken for write in process context.</summary>
    public string Usage
    {
        get
        {
            int u = Volatile.Read(ref _usage);
            char w = UsageChar(u, UsedWrite, UsedInIrqWrite);
            char r = UsageChar(u, UsedRead, UsedInIrqRead);
            char softW = (u & UsedWrite) != 0 ? '+' : '.';
            char softR = (u & UsedRead) != 0 ? '+' : '.';
            char reclaimW = ReclaimFs ? softW : '.';
            char reclaimR = ReclaimFs ? softR : '.';
            return string.Create(8, (w, r, softW, softR, reclaimW, reclaimR), static (span, c) =>
            {
                span[0] = '{';
                span[1] = c.w;
                span[2] = c.r;
                span[3] = c.softW;
                span[4] = c.softR;
                span[5] = c.reclaimW;
                span[6] = c.reclaimR;
                span[7] = '}';
            });
        }
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    internal void MarkUsed(bool read, bool inIrq)
    {
        int bit = inIrq ? (read ? UsedInIrqRead : UsedInIrqWrite) : (read ? UsedRead : UsedWrite);
        // Classes are shared by every instance; only the first use of each kind writes the word.
        if ((Volatile.Read(ref _usage) & bit) == 0)
        {
            Interlocked.Or(ref _usage, bit);
        }
    }

    // get_usage_char(): '+' taken with irqs enabled, '-' taken in irq, '?' both.
    private static char UsageChar(int usage, int enabledBit, int usedInIrqBit)
    {
        bool enabled = (usage & enabledBit) != 0;
        bool inIrq = (usage & usedInIrqBit) != 0;
        return inIrq ? (enabled ? '?' : '-') : (enabled ? '+' : '.');
    }
}
