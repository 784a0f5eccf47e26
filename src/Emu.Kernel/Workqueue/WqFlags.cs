// Mirrors: include/linux/workqueue.h (v4.4): the WQ_* flags of alloc_workqueue() and the max_active limits.
namespace Emu.Kernel;

/// <summary>Workqueue flags (alloc_workqueue's @flags).</summary>
[Flags]
public enum WqFlags : uint
{
    /// <summary>A per-CPU (bound), concurrency-managed workqueue.</summary>
    None = 0,

    /// <summary>Served by unbound pools, one per NUMA node: no concurrency management. WQ_UNBOUND.</summary>
    Unbound = 1 << 1,

    /// <summary>Frozen (max_active 0) between freeze_workqueues_begin() and thaw_workqueues(). WQ_FREEZABLE.</summary>
    Freezable = 1 << 2,

    /// <summary>May be used in memory reclaim: gets a rescuer task named after the workqueue. WQ_MEM_RECLAIM.</summary>
    MemReclaim = 1 << 3,

    /// <summary>Served by the high-priority pools (kworker/N:MH). WQ_HIGHPRI.</summary>
    Highpri = 1 << 4,

    /// <summary>Running items do not count towards the pool's concurrency level. WQ_CPU_INTENSIVE.</summary>
    CpuIntensive = 1 << 5,

    /// <summary>Visible in sysfs (accepted, no effect in Emu). WQ_SYSFS.</summary>
    Sysfs = 1 << 6,

    /// <summary>Unbound when the power_efficient parameter is set (it is not in Emu). WQ_POWER_EFFICIENT.</summary>
    PowerEfficient = 1 << 7,

    /// <summary>Internal: drain_workqueue() is in progress; only chained queueing is allowed. __WQ_DRAINING.</summary>
    Draining = 1 << 16,

    /// <summary>Internal: an ordered workqueue (alloc_ordered_workqueue). __WQ_ORDERED.</summary>
    Ordered = 1 << 17,
}

/// <summary>max_active limits (WQ_MAX_ACTIVE and friends).</summary>
public static class WqLimits
{
    /// <summary>Upper bound of a bound workqueue's max_active. WQ_MAX_ACTIVE.</summary>
    public const int MaxActive = 512;

    /// <summary>Unbound workqueues may have max_active up to this many per CPU. WQ_MAX_UNBOUND_PER_CPU.</summary>
    public const int MaxUnboundPerCpu = 4;

    /// <summary>max_active used when 0 is passed. WQ_DFL_ACTIVE.</summary>
    public const int DflActive = MaxActive / 2;

    /// <summary>WQ_UNBOUND_MAX_ACTIVE: max(WQ_MAX_ACTIVE, WQ_MAX_UNBOUND_PER_CPU * possible CPUs).</summary>
    public static int UnboundMaxActive(int possibleCpus) => Math.Max(MaxActive, MaxUnboundPerCpu * possibleCpus);
}
