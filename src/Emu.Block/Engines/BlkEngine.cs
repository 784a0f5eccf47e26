// Mirrors: include/linux/blk-mq.h (v4.4) struct blk_mq_ops: what a blk-mq driver provides (queue_rq per request,
// init_hctx per hardware queue), and the device behind it.
//
// Model: an engine is the "hardware" under a request queue: it has a capacity and block sizes, and gives each
// hardware queue its own submission/completion queue (a ring for io_uring and psync, a software queue for mem,
// nothing for null). The hardware queue hands an engine queue batches of emu_io descriptors (one native call per
// batch) and its completion thread reaps them in batches. Each engine queue counts what reached it (reads,
// writes, flushes, FUA writes, bytes), so tests can see that a flush or FUA really got to the device.
// Differs: requests reach the engine as emu_io descriptors, one per contiguous memory run, instead of being
// handed over one by one (queue_rq); batching is the hardware queue's job.
using Emu.Interop;

namespace Emu.Block;

/// <summary>What the engine queues of an engine have been asked to do so far.</summary>
/// <param name="Reads">EMU_OP_READ I/Os accepted.</param>
/// <param name="Writes">EMU_OP_WRITE I/Os accepted (FUA ones included).</param>
/// <param name="Flushes">EMU_OP_FSYNC I/Os accepted (cache flushes).</param>
/// <param name="FuaWrites">Writes carrying EMU_IO_FUA.</param>
/// <param name="Nops">EMU_OP_NOP I/Os (completion-thread kicks and fault-injected I/Os).</param>
/// <param name="BytesRead">Bytes of the reads.</param>
/// <param name="BytesWritten">Bytes of the writes.</param>
/// <param name="SubmitCalls">Submit calls that accepted at least one I/O: native calls for the ring engines.</param>
public readonly record struct EngineCounters(
    long Reads, long Writes, long Flushes, long FuaWrites, long Nops, long BytesRead, long BytesWritten, long SubmitCalls)
{
    internal EngineCounters Add(in EngineCounters o) => new(Reads + o.Reads, Writes + o.Writes, Flushes + o.Flushes,
        FuaWrites + o.FuaWrites, Nops + o.Nops, BytesRead + o.BytesRead, BytesWritten + o.BytesWritten,
        SubmitCalls + o.SubmitCalls);
}

/// <summary>The device under a request queue (the blk_mq_ops side of a driver).</summary>
public abstract class BlkEngine : IDisposable
{
    private readonly Lock _lock = new();
    private readonly List<BlkEngineQueue> _queues = []; // L: _lock

    /// <summary>The engine's name as fio spells its ioengine: "io_uring", "psync", "mem", "null".</summary>
    public abstract string Name { get; }

    /// <summary>Bytes the device holds.</summary>
    public abstract long CapacityBytes { get; }

    /// <summary>Smallest addressable unit (logical_block_size).</summary>
    public virtual uint LogicalBlockSize => Blk.SectorSize;

    /// <summary>Smallest unit written without read-modify-write (physical_block_size).</summary>
    public virtual uint PhysicalBlockSize => 4096;

    /// <summary>Alignment the device needs of buffer addresses.</summary>
    public virtual uint DmaAlignment => Blk.SectorSize;

    /// <summary>The sum of what every queue of this engine accepted.</summary>
    public EngineCounters Counters
    {
        get
        {
            EngineCounters sum = default;
            lock (_lock)
            {
                foreach (BlkEngineQueue queue in _queues)
                {
                    sum = sum.Add(queue.Counters);
                }
            }

            return sum;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (BlkEngineQueue queue in _queues)
            {
                queue.Dispose();
            }

            _queues.Clear();
        }

        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// init_hctx(): the queue for hardware queue <paramref name="queueNum"/>, taking up to <paramref name="entries"/>
    /// I/Os per submit and twice that in flight, with its memory on NUMA node <paramref name="node"/> where it matters.
    /// </summary>
    internal BlkEngineQueue InitQueue(int queueNum, int entries, int node)
    {
        BlkEngineQueue queue = CreateQueue(queueNum, entries, node);
        lock (_lock)
        {
            _queues.Add(queue);
        }

        return queue;
    }

    /// <summary>Makes the queue of one hardware queue; see <see cref="InitQueue"/>.</summary>
    protected abstract BlkEngineQueue CreateQueue(int queueNum, int entries, int node);

    /// <summary>Releases what the engine holds besides its queues.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>
/// One hardware queue's way into the engine. <see cref="Submit"/> is called by one thread at a time (the
/// hardware queue's dispatch lock); <see cref="Reap"/> by its completion thread, possibly at the same time.
/// </summary>
public abstract class BlkEngineQueue : IDisposable
{
    private long _reads, _writes, _flushes, _fuaWrites, _nops, _bytesRead, _bytesWritten, _submitCalls; // L: the submitter; read racily

    /// <param name="entries">Most I/Os one <see cref="Submit"/> takes.</param>
    protected BlkEngineQueue(int entries)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(entries);
        Entries = entries;
    }

    /// <summary>Most I/Os one <see cref="Submit"/> call takes.</summary>
    public int Entries { get; }

    /// <summary>Most I/Os submitted and not yet reaped; the hardware queue never exceeds it.</summary>
    public virtual int Capacity => 2 * Entries;

    /// <summary>The descriptor put in <see cref="emu_io.fd"/>; -1 for engines without a file.</summary>
    public virtual int Fd => -1;

    /// <summary>
    /// The I/Os are complete when <see cref="Submit"/> returns: the submitter reaps and completes them itself
    /// (null_blk's irqmode=0), and the completion thread only runs delayed completions.
    /// </summary>
    public virtual bool CompletesInline => false;

    /// <summary>What this queue accepted so far.</summary>
    public EngineCounters Counters => new(Volatile.Read(ref _reads), Volatile.Read(ref _writes),
        Volatile.Read(ref _flushes), Volatile.Read(ref _fuaWrites), Volatile.Read(ref _nops),
        Volatile.Read(ref _bytesRead), Volatile.Read(ref _bytesWritten), Volatile.Read(ref _submitCalls));

    /// <summary>Starts <paramref name="ios"/> with one call (queue_rq for a batch).</summary>
    /// <returns>How many were accepted, from the front, or -errno.</returns>
    public int Submit(ReadOnlySpan<emu_io> ios)
    {
        int accepted = SubmitCore(ios);
        if (accepted > 0)
        {
            Count(ios[..accepted]);
        }

        return accepted;
    }

    /// <summary>
    /// Copies up to <c>cqes.Length</c> completions, first waiting for one for at most <paramref name="timeoutNs"/>
    /// (negative: no limit; 0: do not wait).
    /// </summary>
    /// <returns>How many were copied (0 when the wait timed out), or -errno.</returns>
    public abstract int Reap(Span<emu_completion> cqes, long timeoutNs);

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Starts the I/Os; see <see cref="Submit"/>.</summary>
    protected abstract int SubmitCore(ReadOnlySpan<emu_io> ios);

    /// <summary>Releases the queue (called once every I/O was reaped).</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    private void Count(ReadOnlySpan<emu_io> ios)
    {
        long reads = 0, writes = 0, flushes = 0, fua = 0, nops = 0, bytesRead = 0, bytesWritten = 0;
        foreach (ref readonly emu_io io in ios)
        {
            switch ((emu_io_op)io.op)
            {
                case emu_io_op.EMU_OP_READ:
                    reads++;
                    bytesRead += io.len;
                    break;
                case emu_io_op.EMU_OP_WRITE:
                    writes++;
                    bytesWritten += io.len;
                    if ((io.flags & (ushort)emu_io_flags.EMU_IO_FUA) != 0)
                    {
                        fua++;
                    }

                    break;
                case emu_io_op.EMU_OP_FSYNC:
                    flushes++;
                    break;
                default:
                    nops++;
                    break;
            }
        }

        Volatile.Write(ref _reads, _reads + reads);
        Volatile.Write(ref _writes, _writes + writes);
        Volatile.Write(ref _flushes, _flushes + flushes);
        Volatile.Write(ref _fuaWrites, _fuaWrites + fua);
        Volatile.Write(ref _nops, _nops + nops);
        Volatile.Write(ref _bytesRead, _bytesRead + bytesRead);
        Volatile.Write(ref _bytesWritten, _bytesWritten + bytesWritten);
        Volatile.Write(ref _submitCalls, _submitCalls + 1);
    }
}
