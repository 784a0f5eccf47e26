// A device for tests: it records every engine I/O in order (what the hardware queue issued, with op, offset,
// length and flags) and completes them, moving no data, only as far as its gate allows, so a test can hold
// requests in flight and release them one by one. NOPs (completion-thread kicks, fault-injected I/Os) always
// complete.
namespace Emu.Block.Tests;

internal sealed class TestEngine(long capacityBytes) : BlkEngine
{
    private readonly Lock _lock = new();
    private readonly List<emu_io> _ios = [];   // L: _lock
    private readonly List<TestQueue> _queues = []; // L: _lock
    private long _allowance = long.MaxValue;   // L: _lock: data I/Os that may still complete

    public override string Name => "test";

    public override long CapacityBytes => capacityBytes;

    /// <summary>Every I/O submitted so far, in order.</summary>
    public emu_io[] Ios
    {
        get
        {
            lock (_lock)
            {
                return [.. _ios];
            }
        }
    }

    /// <summary>Data I/Os and flushes stop completing.</summary>
    public void CloseGate()
    {
        lock (_lock)
        {
            _allowance = 0;
        }
    }

    /// <summary>Lets <paramref name="count"/> more I/Os complete (long.MaxValue: all, from now on).</summary>
    public void Release(long count = long.MaxValue)
    {
        TestQueue[] queues;
        lock (_lock)
        {
            _allowance = count == long.MaxValue || _allowance == long.MaxValue ? count : _allowance + count;
            queues = [.. _queues];
        }

        foreach (TestQueue q in queues)
        {
            q.Wake();
        }
    }

    protected override BlkEngineQueue CreateQueue(int queueNum, int entries, int node)
    {
        var q = new TestQueue(this, entries);
        lock (_lock)
        {
            _queues.Add(q);
        }

        return q;
    }

    private sealed class TestQueue(TestEngine engine, int entries) : BlkEngineQueue(entries)
    {
        private readonly List<emu_io> _pending = []; // L: engine._lock
        private readonly WaitQueueHead _wait = new(new NamedWaitResource("test engine interrupt"));

        public void Wake() => Wait.WakeUp(_wait);

        public override int Reap(Span<emu_completion> cqes, long timeoutNs)
        {
            if (timeoutNs < 0)
            {
                Wait.WaitEvent(_wait, static q => q.Completable(), this, TaskState.Interruptible);
            }
            else if (timeoutNs > 0)
            {
                Wait.WaitEventTimeout(_wait, static q => q.Completable(), this, Math.Max(1, timeoutNs / 1_000_000), TaskState.Interruptible);
            }

            int n = 0;
            lock (engine._lock)
            {
                for (int i = 0; i < _pending.Count && n < cqes.Length;)
                {
                    emu_io io = _pending[i];
                    bool nop = io.op == (ushort)emu_io_op.EMU_OP_NOP;
                    if (!nop && engine._allowance == 0)
                    {
                        i++;
                        continue;
                    }

                    if (!nop && engine._allowance != long.MaxValue)
                    {
                        engine._allowance--;
                    }

                    bool data = io.op is (ushort)emu_io_op.EMU_OP_READ or (ushort)emu_io_op.EMU_OP_WRITE;
                    cqes[n++] = new emu_completion { user_data = io.user_data, res = data ? (int)io.len : 0 };
                    _pending.RemoveAt(i);
                }
            }

            return n;
        }

        protected override int SubmitCore(ReadOnlySpan<emu_io> ios)
        {
            lock (engine._lock)
            {
                foreach (emu_io io in ios)
                {
                    engine._ios.Add(io);
                    _pending.Add(io);
                }
            }

            Interlocked.MemoryBarrier();
            Wake();
            return ios.Length;
        }

        private bool Completable()
        {
            lock (engine._lock)
            {
                foreach (emu_io io in _pending)
                {
                    if (io.op == (ushort)emu_io_op.EMU_OP_NOP || engine._allowance > 0)
                    {
                        return true;
                    }
                }

                return false;
            }
        }
    }
}
