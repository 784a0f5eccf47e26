// Mirrors: include/linux/blk-mq.h (v4.4) struct blk_mq_hw_ctx and block/blk-mq.c's dispatch side:
// blk_mq_hctx_mark_pending, flush_busy_ctxs, blk_mq_run_hw_queue / __blk_mq_run_hw_queue, blk_mq_requeue_request,
// blk_rq_map_sg (segments).
//
// Model: a hardware queue owns its tags, one engine queue (a ring for io_uring/psync) and one completion thread.
// Running it splices the requeue list and every pending software queue onto the dispatch list, turns requests into
// engine I/Os (one per run of contiguous memory; a preflush stage is one cache flush, a fault-injected request one
// NOP) and submits them in batches: one Submit call per batch, never more I/Os in flight than the engine queue
// holds. Requests that do not fit stay on the dispatch list and the completion thread runs the queue again once it
// has reaped (v4.4's BLK_MQ_RQ_QUEUE_BUSY + restart). The completion side is in BlkMqHwCtx.Complete.cs.
// Differs: dispatch runs synchronously on the submitting task (v4.4 may defer it to kblockd); lock order is
// completion lock, then dispatch lock (a bi_end_io may submit), never the reverse.
//
// Locking legend: D = _dispatchLock (hctx->lock), C = _completeLock, R = _requeueLock (q->requeue_lock),
// I = set at init, A = atomics.
using System.Numerics;
using Emu.Interop;
using Emu.Kernel;

namespace Emu.Block;

/// <summary>struct blk_mq_hw_ctx: one hardware queue.</summary>
internal sealed partial class BlkMqHwCtx
{
    /// <summary>user_data of the NOP that wakes a completion thread blocked in Reap.</summary>
    internal const ulong KickUserData = ulong.MaxValue;

    private readonly Lock _dispatchLock = new(); // hctx->lock
    private readonly Lock _requeueLock = new();  // q->requeue_lock
    private readonly ulong[] _ctxMap;            // A: ctx_map, a bit per pending software queue
    private readonly emu_io[] _ios;              // D: the batch being built
    private readonly int _budget;                // I: engine I/Os that may be in flight
    private readonly int _fd;                    // I: emu_io.fd for this engine
    private BlkMqCtx[] _ctxs = [];               // I: the software queues mapped here, by IndexHw
    private Request? _dispatchHead;              // D: hctx->dispatch
    private Request? _dispatchTail;              // D
    private Request? _requeueHead;               // R: requeue_list
    private Request? _requeueTail;               // R
    private int _iosInFlight;                    // A: engine I/Os submitted and not reaped
    private int _dispatchPending;                // A: the queue must run again (requeued work, or waiting for budget)

    internal BlkMqHwCtx(RequestQueue queue, int queueNum, int node, int[] cpus, int queueDepth, BlkEngine engine)
    {
        Queue = queue;
        QueueNum = queueNum;
        Cpus = cpus;
        Tags = new BlkMqTags(this, queueDepth);
        int entries = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(queueDepth, 8));
        Engine = engine.InitQueue(queueNum, entries, node);
        _fd = Engine.Fd;
        _ios = new emu_io[Engine.Entries];
        // One slot stays free for the kick NOP that stops the completion thread.
        _budget = Engine.Capacity - 1;
        _ctxMap = new ulong[(Math.Max(cpus.Length, 1) + 63) >> 6];
        _cqes = new emu_completion[Engine.Entries];
        _inlineCqes = new emu_completion[Engine.Entries];
        _delayHeap = new Request[queueDepth];
        _irqWait = new WaitQueueHead(new NamedWaitResource($"interrupt of {queue.Disk.DiskName} hctx {queueNum}"));
    }

    /// <summary>The request queue. I.</summary>
    internal RequestQueue Queue { get; }

    /// <summary>queue_num. I.</summary>
    internal int QueueNum { get; }

    /// <summary>CPUs whose software queues map here (cpumask); the completion thread runs on them. I.</summary>
    internal int[] Cpus { get; }

    /// <summary>This queue's tags and requests. I.</summary>
    internal BlkMqTags Tags { get; }

    /// <summary>The engine's queue for this hardware queue (driver_data). I.</summary>
    internal BlkEngineQueue Engine { get; }

    internal void SetCtxs(BlkMqCtx[] ctxs) => _ctxs = ctxs;

    /// <summary>blk_mq_hctx_mark_pending().</summary>
    internal void MarkPending(BlkMqCtx ctx)
    {
        int bit = ctx.IndexHw;
        ref ulong word = ref _ctxMap[bit >> 6];
        ulong mask = 1UL << (bit & 63);
        if ((Volatile.Read(ref word) & mask) == 0)
        {
            Interlocked.Or(ref word, mask);
        }
    }

    /// <summary>
    /// blk_mq_run_hw_queue(): dispatches what is queued, in batches, as far as the engine queue has room; with an
    /// inline engine, completes what it finished. Called by submitters and by the completion thread.
    /// </summary>
    internal void RunHwQueue()
    {
        EmuTask? task = EmuTask.Current;
        using KFrame frame = task is null ? default : task.Enter("__blk_mq_run_hw_queue");
        while (true)
        {
            ulong[]? failedTags = null;
            int failedError = 0;
            DispatchResult result;
            lock (_dispatchLock)
            {
                Volatile.Write(ref _dispatchPending, 0);
                result = DispatchLocked(ref failedTags, ref failedError);
            }

            if (failedTags is not null)
            {
                CompleteSynthetic(failedTags, failedError);
                continue;
            }

            if (Engine.CompletesInline)
            {
                CompleteInline();
            }

            if (result == DispatchResult.Blocked || Volatile.Read(ref _dispatchPending) == 0)
            {
                return;
            }
        }
    }

    /// <summary>
    /// blk_mq_requeue_request(): puts a request whose next flush stage must run back in front of the queue. Called
    /// in completion context; the caller runs the queue afterwards.
    /// </summary>
    internal void Requeue(Request rq)
    {
        rq.QueueNext = null;
        lock (_requeueLock)
        {
            if (_requeueTail is null)
            {
                _requeueHead = rq;
            }
            else
            {
                _requeueTail.QueueNext = rq;
            }

            _requeueTail = rq;
        }

        Interlocked.Exchange(ref _dispatchPending, 1);
    }

    /// <summary>Wakes the completion thread: a NOP through the engine, or its wait queue for inline engines.</summary>
    internal void Kick()
    {
        if (Engine.CompletesInline)
        {
            Volatile.Write(ref _kicked, 1);
            Emu.Kernel.Wait.WakeUp(_irqWait);
            return;
        }

        lock (_dispatchLock)
        {
            Span<emu_io> nop = _ios.AsSpan(0, 1);
            nop[0] = new emu_io { user_data = KickUserData, op = (ushort)emu_io_op.EMU_OP_NOP, fd = _fd };
            Interlocked.Increment(ref _iosInFlight);
            if (Engine.Submit(nop) != 1)
            {
                Interlocked.Decrement(ref _iosInFlight);
            }
        }
    }

    // __blk_mq_run_hw_queue() with the lock held: batches until the dispatch list is empty, the budget is used up,
    // or the engine refused I/Os (their tags are returned for the caller to fail once the lock is dropped).
    private DispatchResult DispatchLocked(ref ulong[]? failedTags, ref int failedError)
    {
        SpliceRequeueListLocked();
        FlushBusyCtxsLocked();
        while (true)
        {
            if (_dispatchHead is null)
            {
                FlushBusyCtxsLocked();
                if (_dispatchHead is null)
                {
                    return DispatchResult.Idle;
                }
            }

            int room = Math.Min(_ios.Length, _budget - Volatile.Read(ref _iosInFlight));
            if (room <= 0)
            {
                // Pairs with the completion thread's decrement of _iosInFlight, then its look at _dispatchPending:
                // either it sees the flag, or this second look sees the room it made.
                Interlocked.Exchange(ref _dispatchPending, 1);
                if (_budget - Volatile.Read(ref _iosInFlight) <= 0)
                {
                    return DispatchResult.Blocked;
                }

                continue;
            }

            int n = 0;
            Request? rq;
            while (n < room && (rq = _dispatchHead) is not null)
            {
                if (!IssueRequestLocked(rq, room, ref n))
                {
                    break;
                }

                _dispatchHead = rq.QueueNext;
                if (_dispatchHead is null)
                {
                    _dispatchTail = null;
                }

                rq.QueueNext = null;
            }

            Interlocked.Add(ref _iosInFlight, n);
            int accepted = Engine.Submit(_ios.AsSpan(0, n));
            if (accepted != n)
            {
                int first = Math.Max(accepted, 0);
                failedTags = new ulong[n - first];
                for (int i = first; i < n; i++)
                {
                    failedTags[i - first] = _ios[i].user_data;
                }

                failedError = accepted < 0 ? accepted : -KErrno.EAGAIN;
                Interlocked.Add(ref _iosInFlight, first - n);
                return DispatchResult.Failed;
            }
        }
    }

    // Emits the engine I/Os of rq's current stage into _ios[n..room); true when the stage is fully issued.
    private bool IssueRequestLocked(Request rq, int room, ref int n)
    {
        if (!rq.Started)
        {
            StartStage(rq);
        }

        int first = n;
        bool done;
        if (rq.FailInjected)
        {
            _ios[n++] = new emu_io { user_data = (ulong)rq.Tag, op = (ushort)emu_io_op.EMU_OP_NOP, fd = _fd };
            done = true;
        }
        else if (rq.Stage == FlushSeq.Preflush)
        {
            _ios[n++] = new emu_io { user_data = (ulong)rq.Tag, op = (ushort)emu_io_op.EMU_OP_FSYNC, fd = _fd };
            done = true;
        }
        else
        {
            done = EmitDataLocked(rq, room, ref n);
        }

        int emitted = n - first;
        // The +1 taken in StartStage keeps completions of a partly issued stage from ending it early.
        Interlocked.Add(ref rq.IosPending, done ? emitted - 1 : emitted);
        return done;
    }

    private static void StartStage(Request rq)
    {
        rq.Started = true;
        Volatile.Write(ref rq.IosPending, 1);
        rq.BytesDone = 0;
        rq.BytesIssued = 0;
        if (rq.Stage == FlushSeq.Preflush)
        {
            rq.StageStartNs = Ktime.GetNs();
        }
        else
        {
            rq.CursorBio = rq.Bio;
            rq.Cursor = rq.Bio!.Iter;
        }
    }

    // blk_rq_map_sg(): one engine I/O per run of contiguous memory, across the request's bios.
    private bool EmitDataLocked(Request rq, int room, ref int n)
    {
        long offset = (rq.Sector << Blk.SectorShift) + rq.BytesIssued;
        ushort op = (ushort)(rq.Op == ReqOp.Write ? emu_io_op.EMU_OP_WRITE : emu_io_op.EMU_OP_READ);
        ushort flags = (ushort)(rq.Op == ReqOp.Write && (rq.CmdFlags & ReqFlags.Fua) != 0 ? emu_io_flags.EMU_IO_FUA : 0);
        int first = n;
        Bio? bio = rq.CursorBio;
        BvecIter it = rq.Cursor;
        while (bio is not null)
        {
            if (it.BiSize == 0)
            {
                bio = bio.Next;
                if (bio is not null)
                {
                    it = bio.Iter;
                }

                continue;
            }

            (nint address, uint len) = it.Current(bio.IoVec);
            if (n > first && (nint)(_ios[n - 1].buf + _ios[n - 1].len) == address)
            {
                _ios[n - 1].len += len;
            }
            else
            {
                if (n == room)
                {
                    break;
                }

                ref emu_io io = ref _ios[n++];
                io.user_data = (ulong)rq.Tag;
                io.offset = (ulong)offset;
                io.buf = (ulong)address;
                io.len = len;
                io.fd = _fd;
                io.op = op;
                io.flags = flags;
                io.buf_index = 0;
            }

            it.Advance(bio.IoVec, len);
            offset += len;
            rq.BytesIssued += len;
        }

        rq.CursorBio = bio;
        rq.Cursor = it;
        return bio is null;
    }

    // blk_mq_requeue_work(): requeued requests go in front of everything else.
    private void SpliceRequeueListLocked()
    {
        if (Volatile.Read(ref _requeueHead) is null)
        {
            return;
        }

        Request? head;
        Request? tail;
        lock (_requeueLock)
        {
            head = _requeueHead;
            tail = _requeueTail;
            _requeueHead = null;
            _requeueTail = null;
        }

        if (head is null)
        {
            return;
        }

        tail!.QueueNext = _dispatchHead;
        if (_dispatchHead is null)
        {
            _dispatchTail = tail;
        }

        _dispatchHead = head;
    }

    // flush_busy_ctxs(): every software queue marked pending goes onto the dispatch list.
    private void FlushBusyCtxsLocked()
    {
        for (int w = 0; w < _ctxMap.Length; w++)
        {
            if (Volatile.Read(ref _ctxMap[w]) == 0)
            {
                continue;
            }

            for (ulong bits = Interlocked.Exchange(ref _ctxMap[w], 0); bits != 0; bits &= bits - 1)
            {
                BlkMqCtx ctx = _ctxs[(w << 6) + BitOperations.TrailingZeroCount(bits)];
                Request? head = ctx.TakeAll(out Request? tail);
                if (head is null)
                {
                    continue;
                }

                if (_dispatchTail is null)
                {
                    _dispatchHead = head;
                }
                else
                {
                    _dispatchTail.QueueNext = head;
                }

                _dispatchTail = tail;
            }
        }
    }

    private enum DispatchResult
    {
        Idle,    // nothing left to dispatch
        Blocked, // the engine queue is full; the completion thread runs the queue again
        Failed,  // the engine refused I/Os
    }
}
