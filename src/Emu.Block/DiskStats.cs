// Mirrors: include/linux/genhd.h (v4.4) struct disk_stats / part_stat_*, block/blk-core.c blk_account_io_start /
// blk_account_io_done, block/genhd.c part_stat_show and part_inflight_show (/sys/block/<dev>/stat, inflight),
// Documentation/block/stat.txt.
//
// Model: the counters of /sys/block/<dev>/stat, kept where they are touched: merges and requests started per CPU
// software queue (atomics, each on its own cache lines), completions, sectors, ticks and per-op latency
// histograms per hardware queue (written only under that queue's completion lock, so plain fields), io_ticks
// once per disk (updated at most once per millisecond). Reading sums them: in_flight is requests started minus
// requests done.
// Differs: the stat line has v5.5's 17 fields (discard and flush fields added; discards are always 0 here), and
// time_in_queue and io_ticks follow v5.x (sum of request durations; busy time stamped at start and completion)
// rather than v4.4's part_round_stats. A PREFLUSH on a write counts as one flush, as the kernel's flush
// machinery issues a flush request for it.
using System.Globalization;
using System.Runtime.InteropServices;
using Emu.Kernel.Stats;

namespace Emu.Block;

/// <summary>One reading of a disk's statistics (the fields of /sys/block/&lt;dev&gt;/stat).</summary>
public readonly record struct DiskStat(
    long ReadIos,
    long ReadMerges,
    long ReadSectors,
    long ReadTicksMs,
    long WriteIos,
    long WriteMerges,
    long WriteSectors,
    long WriteTicksMs,
    long InFlight,
    long IoTicksMs,
    long TimeInQueueMs,
    long FlushIos,
    long FlushTicksMs,
    long ReadsInFlight,
    long WritesInFlight)
{
    /// <summary>The 17 numbers of /sys/block/&lt;dev&gt;/stat (v5.5+ layout; discard fields 0).</summary>
    public string Format() => string.Create(CultureInfo.InvariantCulture,
        $"{ReadIos,8} {ReadMerges,8} {ReadSectors,8} {ReadTicksMs,8} {WriteIos,8} {WriteMerges,8} {WriteSectors,8} {WriteTicksMs,8} {InFlight,8} {IoTicksMs,8} {TimeInQueueMs,8} {0,8} {0,8} {0,8} {0,8} {FlushIos,8} {FlushTicksMs,8}");
}

/// <summary>Completion-side statistics of one hardware queue. L: that queue's completion lock.</summary>
internal sealed class HctxStats
{
    internal readonly long[] Ios = new long[3];      // requests done, by ReqOp
    internal readonly long[] Sectors = new long[3];
    internal readonly long[] TicksNs = new long[3];  // sum of request durations, by op
    internal long TimeInQueueNs;
    internal long PreflushIos;                       // flush stages of writes
    internal long PreflushTicksNs;
    internal readonly LatencyHistogram[] Latency = [new(), new(), new()];

    // blk_account_io_done()
    internal void AccountDone(Request rq, long nowNs)
    {
        int op = (int)rq.Op;
        long duration = nowNs - rq.StartNs;
        Volatile.Write(ref Ios[op], Ios[op] + 1);
        Volatile.Write(ref Sectors[op], Sectors[op] + rq.Sectors);
        Volatile.Write(ref TicksNs[op], TicksNs[op] + duration);
        Volatile.Write(ref TimeInQueueNs, TimeInQueueNs + duration);
        Latency[op].Record(duration);
    }

    internal void AccountPreflush(long durationNs)
    {
        Volatile.Write(ref PreflushIos, PreflushIos + 1);
        Volatile.Write(ref PreflushTicksNs, PreflushTicksNs + durationNs);
        Latency[(int)ReqOp.Flush].Record(durationNs);
    }
}

/// <summary>The disk-wide parts of the statistics and the readers that sum the per-queue ones.</summary>
internal sealed class DiskStats
{
    private readonly RequestQueue _q; // I
    private IoTicks _ticks;           // A

    internal DiskStats(RequestQueue q)
    {
        _q = q;
        _ticks.StampMs = Ktime.JiffiesMs();
    }

    /// <summary>
    /// update_io_ticks() (v5.x): at most once per millisecond, the time since the last stamp counts as busy if
    /// requests are in flight. Called when requests start and when a batch of them completes.
    /// </summary>
    internal void UpdateIoTicks()
    {
        long now = Ktime.JiffiesMs();
        long stamp = Volatile.Read(ref _ticks.StampMs);
        if (now > stamp && Interlocked.CompareExchange(ref _ticks.StampMs, now, stamp) == stamp && InFlight(out _, out _) > 0)
        {
            Interlocked.Add(ref _ticks.IoTicksMs, now - stamp);
        }
    }

    /// <summary>part_in_flight(): requests started and not yet done.</summary>
    internal long InFlight(out long reads, out long writes)
    {
        // Completions are read before starts: a request is started before it completes, so no count goes negative.
        Span<long> done = stackalloc long[3];
        foreach (BlkMqHwCtx hctx in _q.Hctxs)
        {
            for (int op = 0; op < 3; op++)
            {
                done[op] += Volatile.Read(ref hctx.Stats.Ios[op]);
            }
        }

        Span<long> started = stackalloc long[3];
        foreach (BlkMqCtx ctx in _q.Ctxs)
        {
            for (int op = 0; op < 3; op++)
            {
                started[op] += Volatile.Read(ref ctx.Stats.Started((ReqOp)op));
            }
        }

        reads = started[0] - done[0];
        writes = started[1] - done[1];
        return reads + writes + started[2] - done[2];
    }

    internal DiskStat Read()
    {
        long inFlight = InFlight(out long readsInFlight, out long writesInFlight);
        Span<long> ios = stackalloc long[3];
        Span<long> sectors = stackalloc long[3];
        Span<long> ticks = stackalloc long[3];
        Span<long> merges = stackalloc long[3];
        long timeInQueue = 0, preflushIos = 0, preflushTicks = 0;
        foreach (BlkMqHwCtx hctx in _q.Hctxs)
        {
            HctxStats s = hctx.Stats;
            for (int op = 0; op < 3; op++)
            {
                ios[op] += Volatile.Read(ref s.Ios[op]);
                sectors[op] += Volatile.Read(ref s.Sectors[op]);
                ticks[op] += Volatile.Read(ref s.TicksNs[op]);
            }

            timeInQueue += Volatile.Read(ref s.TimeInQueueNs);
            preflushIos += Volatile.Read(ref s.PreflushIos);
            preflushTicks += Volatile.Read(ref s.PreflushTicksNs);
        }

        foreach (BlkMqCtx ctx in _q.Ctxs)
        {
            for (int op = 0; op < 3; op++)
            {
                merges[op] += Volatile.Read(ref ctx.Stats.Merged((ReqOp)op));
            }
        }

        const long NsPerMs = 1_000_000;
        return new DiskStat(
            ios[0], merges[0], sectors[0], ticks[0] / NsPerMs,
            ios[1], merges[1], sectors[1], ticks[1] / NsPerMs,
            inFlight, Volatile.Read(ref _ticks.IoTicksMs), timeInQueue / NsPerMs,
            ios[2] + preflushIos, (ticks[2] + preflushTicks) / NsPerMs,
            readsInFlight, writesInFlight);
    }

    /// <summary>The latency histograms of <paramref name="op"/> of every hardware queue, merged (each read under its lock).</summary>
    internal LatencyHistogram ReadLatency(ReqOp op)
    {
        var merged = new LatencyHistogram();
        foreach (BlkMqHwCtx hctx in _q.Hctxs)
        {
            hctx.WithCompleteLock(static (s, state) => state.merged.Add(s.Latency[(int)state.op]), (merged, op));
        }

        return merged;
    }

    [StructLayout(LayoutKind.Explicit, Size = 192)]
    private struct IoTicks
    {
        [FieldOffset(64)] internal long StampMs;   // part->stamp
        [FieldOffset(72)] internal long IoTicksMs; // io_ticks
    }
}
