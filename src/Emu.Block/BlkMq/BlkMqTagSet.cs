// Mirrors: include/linux/blk-mq.h (v4.4) struct blk_mq_tag_set, the shape a driver asks blk_mq_alloc_tag_set for,
// plus the queue limits a driver sets right after (blk_queue_max_hw_sectors, blk_queue_max_segments).
//
// Model: how many hardware queues (by default one per NUMA node that has CPUs, each served by the CPUs of its
// node), how many tags each has, and the largest request the queue builds.
// Differs: the CPU-to-queue map is computed from Emu's topology reader; with an explicit queue count CPUs are
// spread in contiguous blocks (v4.4's blk_mq_map_queues also keeps SMT siblings together; Emu does not).
using Emu.Interop;

namespace Emu.Block;

/// <summary>struct blk_mq_tag_set: the layout of a request queue's hardware queues.</summary>
public sealed record BlkMqTagSet
{
    /// <summary>Hardware queues (nr_hw_queues); 0: one per NUMA node with CPUs.</summary>
    public int NrHwQueues { get; init; }

    /// <summary>Tags per hardware queue (queue_depth): requests in flight before submitters sleep.</summary>
    public int QueueDepth { get; init; } = Blk.DefaultQueueDepth;

    /// <summary>Largest request in sectors (max_sectors); larger bios are split.</summary>
    public int MaxSectors { get; init; } = Blk.DefaultMaxSectors;

    /// <summary>Most memory segments per request (max_segments).</summary>
    public int MaxSegments { get; init; } = Blk.MaxSegments;

    /// <summary>Pin each completion thread to the CPUs of its hardware queue.</summary>
    public bool PinIrqThreads { get; init; } = true;

    /// <summary>The CPU topology to map; null reads this machine's.</summary>
    public Topology? Topology { get; init; }

    /// <summary>Most tags one hardware queue may have. BLK_MQ_MAX_DEPTH.</summary>
    public const int MaxDepth = 10240;

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(NrHwQueues);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(QueueDepth);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(QueueDepth, MaxDepth);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxSectors, 8);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxSectors, 1 << 22);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxSegments);
    }
}
