// The mem engine: a RAM disk (brd-like) for fast tests. Its "device" is one native buffer; each hardware queue's
// engine queue holds submitted I/Os until the completion thread reaps them, and the completion thread moves the
// data (its DMA) before completing, so the same hardware-queue and completion-context paths run as with a real
// device. Cache flushes and FUA writes have nothing to do but are counted like any I/O reaching the engine.
using Emu.Interop;
using Emu.Kernel;

namespace Emu.Block;

/// <summary>A RAM-backed device whose I/O completes on the hardware queues' completion threads.</summary>
public sealed class MemEngine : BlkEngine
{
    private readonly NativeBuffer _store; // I
    private readonly uint _logicalBlockSize;

    /// <param name="capacityBytes">Size of the RAM disk (zeroed).</param>
    /// <param name="logicalBlockSize">The logical block size it reports.</param>
    /// <param name="node">NUMA node for the memory; -1 for no preference.</param>
    public MemEngine(long capacityBytes, uint logicalBlockSize = Blk.SectorSize, int node = -1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityBytes, (long)logicalBlockSize);
        if (logicalBlockSize < Blk.SectorSize || (logicalBlockSize & (logicalBlockSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(logicalBlockSize), "a power of two of 512 or more");
        }

        _logicalBlockSize = logicalBlockSize;
        _store = NativeBuffer.Allocate(capacityBytes, node);
    }

    /// <inheritdoc />
    public override string Name => "mem";

    /// <inheritdoc />
    public override long CapacityBytes => _store.Length;

    /// <inheritdoc />
    public override uint LogicalBlockSize => _logicalBlockSize;

    /// <summary>The disk's bytes, for tests to look at or prepare (not synchronized with I/O in flight).</summary>
    public unsafe Span<byte> Data(long offset, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset + length, _store.Length);
        return new Span<byte>((byte*)_store.Pointer + offset, length);
    }

    /// <inheritdoc />
    protected override BlkEngineQueue CreateQueue(int queueNum, int entries, int node) => new MemQueue(this, entries);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _store.Dispose();
        }
    }

    private sealed class MemQueue : BlkEngineQueue
    {
        private readonly MemEngine _engine;
        private readonly Lock _lock = new();
        private readonly emu_io[] _pending;   // L: _lock; a ring of submitted I/Os
        private readonly emu_io[] _taken;     // the reaper's
        private readonly WaitQueueHead _wait; // the reaper sleeps here
        private int _head;                    // L: _lock
        private int _count;                   // L: _lock; read unlocked by the wait condition

        internal MemQueue(MemEngine engine, int entries)
            : base(entries)
        {
            _engine = engine;
            _pending = new emu_io[Capacity];
            _taken = new emu_io[Capacity];
            _wait = new WaitQueueHead(new NamedWaitResource("mem engine interrupt"));
        }

        public override int Reap(Span<emu_completion> cqes, long timeoutNs)
        {
            if (timeoutNs < 0)
            {
                Wait.WaitEvent(_wait, static q => Volatile.Read(ref q._count) > 0, this, TaskState.Interruptible);
            }
            else if (timeoutNs > 0)
            {
                long ms = Math.Max(1, (timeoutNs + 999_999) / 1_000_000);
                Wait.WaitEventTimeout(_wait, static q => Volatile.Read(ref q._count) > 0, this, ms, TaskState.Interruptible);
            }

            int n;
            lock (_lock)
            {
                n = Math.Min(_count, cqes.Length);
                for (int i = 0; i < n; i++)
                {
                    _taken[i] = _pending[_head];
                    _head = (_head + 1) % _pending.Length;
                }

                _count -= n;
            }

            for (int i = 0; i < n; i++)
            {
                cqes[i] = new emu_completion { user_data = _taken[i].user_data, res = Perform(in _taken[i]) };
            }

            return n;
        }

        protected override int SubmitCore(ReadOnlySpan<emu_io> ios)
        {
            int accepted;
            lock (_lock)
            {
                accepted = Math.Min(ios.Length, Math.Min(Entries, _pending.Length - _count));
                for (int i = 0; i < accepted; i++)
                {
                    _pending[(_head + _count + i) % _pending.Length] = ios[i];
                }

                Volatile.Write(ref _count, _count + accepted);
            }

            // Orders the count update before the look at the reaper's wait queue (it queued itself, then looked at
            // the count), so the wake-up cannot be lost.
            Interlocked.MemoryBarrier();
            if (_wait.Active)
            {
                Wait.WakeUp(_wait);
            }

            return accepted == 0 ? -Errno.EAGAIN : accepted;
        }

        private unsafe int Perform(in emu_io io)
        {
            switch ((emu_io_op)io.op)
            {
                case emu_io_op.EMU_OP_READ:
                case emu_io_op.EMU_OP_WRITE:
                    if (io.offset + io.len > (ulong)_engine._store.Length)
                    {
                        return -KErrno.EIO;
                    }

                    byte* disk = (byte*)_engine._store.Pointer + io.offset;
                    if (io.op == (ushort)emu_io_op.EMU_OP_READ)
                    {
                        Buffer.MemoryCopy(disk, (void*)io.buf, io.len, io.len);
                    }
                    else
                    {
                        Buffer.MemoryCopy((void*)io.buf, disk, io.len, io.len);
                    }

                    return (int)io.len;
                default:
                    return 0; // FSYNC and NOP: nothing volatile to flush, nothing to do
            }
        }
    }
}
