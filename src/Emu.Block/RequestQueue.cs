// Mirrors: include/linux/blkdev.h (v4.4) struct request_queue for a blk-mq device, and block/blk-mq.c
// blk_mq_init_queue / blk_mq_init_hw_queues / blk_mq_init_cpu_queues / blk_mq_map_swqueue.
//
// Model: one software queue (blk_mq_ctx) per CPU, each mapped to a hardware queue (blk_mq_hw_ctx); by default one
// hardware queue per NUMA node, served by that node's CPUs, with its own tags, engine queue and completion thread
// pinned to those CPUs. Submitters use the software queue of the CPU they run on. The queue's limits come from the
// engine (block sizes, alignment) and the tag set (request size, segments).
// Differs: the queue and its disk are created together by GenDisk.Create; there is no elevator.
using Emu.Interop;

namespace Emu.Block;

/// <summary>struct request_queue (blk-mq).</summary>
public sealed class RequestQueue
{
    private readonly int[] _cpuToCtx; // I: software queue index of each CPU number, -1 for none

    internal RequestQueue(GenDisk disk, BlkEngine engine, BlkMqTagSet set)
    {
        Disk = disk;
        Limits = new QueueLimits(Math.Max(engine.LogicalBlockSize, Blk.SectorSize),
            Math.Max(engine.PhysicalBlockSize, engine.LogicalBlockSize), Math.Max(engine.DmaAlignment, 1),
            set.MaxSectors, set.MaxSegments);
        QueueDepth = set.QueueDepth;
        BioSplit = new BioSet(4, 1);
        Stats = new DiskStats(this);

        Topology topology = set.Topology ?? Topology.Read();
        int[] cpus = new int[topology.Cpus.Length];
        int[] cpuNodes = new int[cpus.Length];
        for (int i = 0; i < cpus.Length; i++)
        {
            cpus[i] = topology.Cpus[i].Cpu;
            cpuNodes[i] = topology.Cpus[i].Node;
        }

        if (cpus.Length == 0)
        {
            cpus = [0];
            cpuNodes = [0];
        }

        int[] hwOf = MapQueues(set.NrHwQueues, cpuNodes, out int nrHw);
        Hctxs = new BlkMqHwCtx[nrHw];
        Ctxs = new BlkMqCtx[cpus.Length];
        _cpuToCtx = new int[cpus.Max() + 1];
        Array.Fill(_cpuToCtx, -1);
        for (int h = 0; h < nrHw; h++)
        {
            var hwCpus = new List<int>();
            int node = 0;
            for (int i = 0; i < cpus.Length; i++)
            {
                if (hwOf[i] == h)
                {
                    if (hwCpus.Count == 0)
                    {
                        node = Math.Max(cpuNodes[i], 0);
                    }

                    hwCpus.Add(cpus[i]);
                }
            }

            Hctxs[h] = new BlkMqHwCtx(this, h, node, [.. hwCpus], set.QueueDepth, engine);
        }

        var perHw = new List<BlkMqCtx>[nrHw];
        for (int h = 0; h < nrHw; h++)
        {
            perHw[h] = [];
        }

        for (int i = 0; i < cpus.Length; i++)
        {
            BlkMqHwCtx hctx = Hctxs[hwOf[i]];
            var ctx = new BlkMqCtx(hctx, perHw[hwOf[i]].Count);
            perHw[hwOf[i]].Add(ctx);
            Ctxs[i] = ctx;
            _cpuToCtx[cpus[i]] = i;
        }

        for (int h = 0; h < nrHw; h++)
        {
            Hctxs[h].SetCtxs([.. perHw[h]]);
        }
    }

    /// <summary>The disk this queue serves (queue->disk).</summary>
    public GenDisk Disk { get; }

    /// <summary>The limits requests are built within (queue->limits).</summary>
    public QueueLimits Limits { get; }

    /// <summary>Hardware queues (nr_hw_queues).</summary>
    public int NrHwQueues => Hctxs.Length;

    /// <summary>Tags per hardware queue (queue_depth).</summary>
    public int QueueDepth { get; }

    /// <summary>Requests holding a tag now, over all hardware queues.</summary>
    public int TagsInUse
    {
        get
        {
            int used = 0;
            foreach (BlkMqHwCtx hctx in Hctxs)
            {
                used += hctx.Tags.InUse;
            }

            return used;
        }
    }

    /// <summary>The CPUs each hardware queue serves, by queue number.</summary>
    public IReadOnlyList<IReadOnlyList<int>> HwQueueCpus => Array.ConvertAll(Hctxs, static h => (IReadOnlyList<int>)h.Cpus);

    internal BlkMqHwCtx[] Hctxs { get; }

    internal BlkMqCtx[] Ctxs { get; }

    /// <summary>The pool split bios come from (q->bio_split).</summary>
    internal BioSet BioSplit { get; }

    internal DiskStats Stats { get; }

    internal FaultInjection Faults => Disk.Faults;

    /// <summary>blk_queue_dying(): new bios fail.</summary>
    internal volatile bool Dying;

    /// <summary>blk_mq_get_ctx(): the software queue of the CPU the caller runs on.</summary>
    internal BlkMqCtx CurrentCtx()
    {
        int cpu = Thread.GetCurrentProcessorId();
        int[] map = _cpuToCtx;
        int index = (uint)cpu < (uint)map.Length ? map[cpu] : -1;
        return Ctxs[index >= 0 ? index : (int)((uint)cpu % (uint)Ctxs.Length)];
    }

    // blk_mq_map_queues(): the hardware queue of each CPU (by position in the CPU list).
    private static int[] MapQueues(int wanted, int[] cpuNodes, out int nrHw)
    {
        int n = cpuNodes.Length;
        var map = new int[n];
        if (wanted <= 0)
        {
            int[] nodes = cpuNodes.Distinct().Order().ToArray();
            nrHw = nodes.Length;
            for (int i = 0; i < n; i++)
            {
                map[i] = Array.IndexOf(nodes, cpuNodes[i]);
            }

            return map;
        }

        nrHw = Math.Min(wanted, n);
        for (int i = 0; i < n; i++)
        {
            map[i] = (int)((long)i * nrHw / n);
        }

        return map;
    }
}
