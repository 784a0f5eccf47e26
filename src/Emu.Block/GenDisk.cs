// Mirrors: include/linux/genhd.h (v4.4) struct gendisk and block/genhd.c add_disk / del_gendisk, with
// blk_cleanup_queue's drain.
//
// Model: a disk is a name, a capacity in sectors, a blk-mq request queue over an engine, its statistics and its
// fault injector. Create sets up the queue (software and hardware queues, tags, engine queues) and starts one
// completion thread per hardware queue; Dispose marks the queue dying (new bios fail with -ENODEV), lets every
// request in flight complete, stops the completion threads and releases the engine.
// Differs: there are no partitions or block_device objects: bios name the disk directly (bio->bi_disk, as since
// v4.14). Metrics are published under the "Emu.Block" meter while the disk exists.
using Emu.Kernel;
using Emu.Kernel.Stats;

namespace Emu.Block;

/// <summary>struct gendisk: an emulated block device.</summary>
public sealed class GenDisk : IDisposable
{
    private const int DrainTimeoutMs = 60_000;

    private int _disposed; // Interlocked: Dispose runs once

    private GenDisk(string diskName, BlkEngine engine)
    {
        DiskName = diskName;
        Engine = engine;
        Capacity = engine.CapacityBytes >> Blk.SectorShift;
        Faults = new FaultInjection();
    }

    /// <summary>disk_name, e.g. "emu0".</summary>
    public string DiskName { get; }

    /// <summary>get_capacity(): size in 512-byte sectors.</summary>
    public long Capacity { get; }

    /// <summary>The device under the queue.</summary>
    public BlkEngine Engine { get; }

    /// <summary>The disk's request queue (disk->queue).</summary>
    public RequestQueue Queue { get; private set; } = null!;

    /// <summary>Errors and delays injected into this disk's I/O.</summary>
    public FaultInjection Faults { get; }

    /// <summary>The completion threads, one per hardware queue.</summary>
    public IReadOnlyList<EmuTask> IrqTasks => Array.ConvertAll(Queue.Hctxs, static h => h.IrqTask!);

    /// <summary>
    /// Creates the disk over <paramref name="engine"/> (which the disk then owns) and starts its completion threads.
    /// </summary>
    /// <param name="diskName">disk_name, e.g. "emu0"; completion threads are named "irq/NAME-qN".</param>
    /// <param name="engine">The device: <see cref="UringEngine"/>, <see cref="PsyncEngine"/>, <see cref="MemEngine"/>, <see cref="NullEngine"/>.</param>
    /// <param name="set">Hardware queues, depth and limits; null for the defaults.</param>
    public static GenDisk Create(string diskName, BlkEngine engine, BlkMqTagSet? set = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(diskName);
        ArgumentNullException.ThrowIfNull(engine);
        set ??= new BlkMqTagSet();
        set.Validate();
        var disk = new GenDisk(diskName, engine);
        try
        {
            disk.Queue = new RequestQueue(disk, engine, set);
        }
        catch
        {
            engine.Dispose();
            throw;
        }

        foreach (BlkMqHwCtx hctx in disk.Queue.Hctxs)
        {
            hctx.StartIrqThread($"irq/{diskName}-q{hctx.QueueNum}", set.PinIrqThreads ? hctx.Cpus : null);
        }

        BlkMetrics.Register(disk);
        return disk;
    }

    /// <summary>/sys/block/NAME/stat: the disk's I/O statistics now.</summary>
    public DiskStat ReadStat() => Queue.Stats.Read();

    /// <summary>Completion latency of <paramref name="op"/> requests (submission to completion), all queues merged.</summary>
    public LatencyHistogram ReadLatency(ReqOp op) => Queue.Stats.ReadLatency(op);

    /// <summary>
    /// del_gendisk() + blk_cleanup_queue(): new bios fail with -ENODEV, requests in flight complete, the completion
    /// threads exit and the engine is released. Every plug holding requests for this disk must be finished first.
    /// </summary>
    /// <exception cref="InvalidOperationException">I/O did not drain within a minute.</exception>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        BlkMetrics.Unregister(this);
        Queue.Dying = true;
        foreach (BlkMqHwCtx hctx in Queue.Hctxs)
        {
            hctx.Stop();
        }

        foreach (BlkMqHwCtx hctx in Queue.Hctxs)
        {
            if (hctx.IrqTask is { } task && !task.Join(DrainTimeoutMs))
            {
                throw new InvalidOperationException(
                    $"{DiskName}: hctx {hctx.QueueNum} still has {hctx.Tags.InUse} requests in flight after {DrainTimeoutMs / 1000} s");
            }
        }

        Engine.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => DiskName;
}
