// The null engine (fio's ioengine=null, null_blk with irqmode=0): every I/O completes as soon as it is submitted,
// moving no data, and the submitting task completes it itself, in interrupt context. What is left is the block
// layer's own cost per I/O: bio, plug, tag, request, dispatch, completion, bi_end_io.
using Emu.Interop;

namespace Emu.Block;

/// <summary>A device that completes every I/O at once without moving data.</summary>
public sealed class NullEngine : BlkEngine
{
    private readonly long _capacityBytes;
    private readonly uint _logicalBlockSize;

    /// <param name="capacityBytes">The size it reports.</param>
    /// <param name="logicalBlockSize">The logical block size it reports.</param>
    public NullEngine(long capacityBytes, uint logicalBlockSize = Blk.SectorSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityBytes, (long)logicalBlockSize);
        _capacityBytes = capacityBytes;
        _logicalBlockSize = logicalBlockSize;
    }

    /// <inheritdoc />
    public override string Name => "null";

    /// <inheritdoc />
    public override long CapacityBytes => _capacityBytes;

    /// <inheritdoc />
    public override uint LogicalBlockSize => _logicalBlockSize;

    /// <inheritdoc />
    protected override BlkEngineQueue CreateQueue(int queueNum, int entries, int node) => new NullQueue(entries);

    private sealed class NullQueue(int entries) : BlkEngineQueue(entries)
    {
        private readonly Lock _lock = new();
        private readonly emu_completion[] _done = new emu_completion[2 * entries]; // L: _lock; a ring
        private int _head;  // L: _lock
        private int _count; // L: _lock

        public override bool CompletesInline => true;

        public override int Reap(Span<emu_completion> cqes, long timeoutNs)
        {
            lock (_lock)
            {
                int n = Math.Min(_count, cqes.Length);
                for (int i = 0; i < n; i++)
                {
                    cqes[i] = _done[_head];
                    _head = (_head + 1) % _done.Length;
                }

                _count -= n;
                return n;
            }
        }

        protected override int SubmitCore(ReadOnlySpan<emu_io> ios)
        {
            lock (_lock)
            {
                int accepted = Math.Min(ios.Length, Math.Min(Entries, _done.Length - _count));
                for (int i = 0; i < accepted; i++)
                {
                    ref readonly emu_io io = ref ios[i];
                    bool data = io.op is (ushort)emu_io_op.EMU_OP_READ or (ushort)emu_io_op.EMU_OP_WRITE;
                    _done[(_head + _count + i) % _done.Length] = new emu_completion
                    {
                        user_data = io.user_data,
                        res = data ? (int)io.len : 0,
                    };
                }

                _count += accepted;
                return accepted == 0 ? -Errno.EAGAIN : accepted;
            }
        }
    }
}
