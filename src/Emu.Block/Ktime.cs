// Mirrors: include/linux/ktime.h ktime_get_ns() and jiffies, as the block layer's statistics read them.
using System.Diagnostics;

namespace Emu.Block;

/// <summary>Monotonic clocks for I/O timestamps.</summary>
internal static class Ktime
{
    private static readonly double s_nsPerTick = 1e9 / Stopwatch.Frequency;
    private static readonly bool s_ticksAreNs = Stopwatch.Frequency == 1_000_000_000;

    /// <summary>ktime_get_ns(): monotonic nanoseconds.</summary>
    internal static long GetNs()
    {
        long ticks = Stopwatch.GetTimestamp();
        return s_ticksAreNs ? ticks : (long)(ticks * s_nsPerTick);
    }

    /// <summary>jiffies in milliseconds (HZ=1000), for io_ticks.</summary>
    internal static long JiffiesMs() => Environment.TickCount64;
}
