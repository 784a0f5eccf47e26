// Mirrors: block/blk-mq.h (v4.4) struct blk_mq_ctx, the per-CPU software staging queue, and blk-mq.c's
// __blk_mq_insert_req_list / blk_mq_insert_requests / flush_busy_ctxs.
//
// Model: every CPU has a software queue mapped to one hardware queue. Submitters insert requests into the queue
// of the CPU they run on and mark it pending in the hardware queue's ctx map; running the hardware queue splices
// every pending software queue onto its dispatch list. Per-CPU statistics (merges, requests started) live here,
// on their own cache lines, as the kernel's per-CPU part_stat does.
// Differs: a task may migrate between reading its CPU and using the queue, so the list takes a lock (v4.4 also
// locks ctx->lock) and the statistics are updated with atomics instead of with preemption disabled.
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu.Block;

/// <summary>struct blk_mq_ctx: one CPU's software queue.</summary>
internal sealed class BlkMqCtx
{
    private readonly Lock _lock = new(); // ctx->lock
    private Request? _head;               // L: _lock; rq_list
    private Request? _tail;               // L: _lock

    internal BlkMqCtx(BlkMqHwCtx hctx, int indexInHctx)
    {
        Hctx = hctx;
        IndexHw = indexInHctx;
    }

    /// <summary>Position in the hardware queue's ctx map (index_hw). I.</summary>
    internal int IndexHw { get; }

    /// <summary>The hardware queue this CPU maps to. I.</summary>
    internal BlkMqHwCtx Hctx { get; }

    /// <summary>Where the next tag search starts (last_tag); a racy hint.</summary>
    internal int LastTag;

    /// <summary>This CPU's share of the disk statistics.</summary>
    internal CtxStatCounters Stats;

    /// <summary>__blk_mq_insert_req_list() for a chain of requests linked by QueueNext, then marks the ctx pending.</summary>
    internal void InsertRequests(Request head, Request tail)
    {
        tail.QueueNext = null;
        lock (_lock)
        {
            if (_tail is null)
            {
                _head = head;
            }
            else
            {
                _tail.QueueNext = head;
            }

            _tail = tail;
        }

        Hctx.MarkPending(this);
    }

    /// <summary>flush_busy_ctxs() for this queue: takes the whole list.</summary>
    internal Request? TakeAll(out Request? tail)
    {
        lock (_lock)
        {
            Request? head = _head;
            tail = _tail;
            _head = null;
            _tail = null;
            return head;
        }
    }
}

/// <summary>
/// Submission-side statistics of one CPU, padded to keep other CPUs' counters off its cache lines. Indexed by
/// <see cref="ReqOp"/>. Updated with Interlocked.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal struct CtxStatCounters
{
    [FieldOffset(64)] internal long StartedRead;   // requests started (in_flight's increments)
    [FieldOffset(72)] internal long StartedWrite;
    [FieldOffset(80)] internal long StartedFlush;
    [FieldOffset(88)] internal long MergedRead;    // merges[READ]
    [FieldOffset(96)] internal long MergedWrite;   // merges[WRITE]
    [FieldOffset(104)] internal long MergedFlush;

    [UnscopedRef]
    internal ref long Started(ReqOp op) => ref Unsafe.Add(ref StartedRead, (int)op);

    [UnscopedRef]
    internal ref long Merged(ReqOp op) => ref Unsafe.Add(ref MergedRead, (int)op);
}
