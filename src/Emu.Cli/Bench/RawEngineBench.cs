using System.Diagnostics;
using Emu.Interop;
using Emu.Kernel.Stats;

namespace Emu.Cli.Bench;

/// <summary>
/// fio-style load straight on the shim's engine: each job is one thread with its own ring, keeping iodepth
/// I/Os in flight, submitting every free slot in one native call and reaping in batches, like fio's io_uring
/// engine. Completion latency is measured from the submit call to the reap, as fio's clat.
/// </summary>
internal static class RawEngineBench
{
    public static BlkBenchResult Run(BlkBenchOptions o, BlockDevice device, IoEngine engine)
    {
        var jobs = new Job[o.NumJobs];
        var threads = new Thread[o.NumJobs];
        using var start = new Barrier(o.NumJobs + 1);
        for (int j = 0; j < o.NumJobs; j++)
        {
            var job = jobs[j] = new Job(o, device, engine, o.Seed + (ulong)j * 0x9E3779B97F4A7C15UL);
            threads[j] = new Thread(() => job.Run(start)) { IsBackground = true, Name = $"emu-bench/{j}" };
            threads[j].Start();
        }
        start.SignalAndWait();
        foreach (var t in threads) t.Join();

        var lat = new LatencyHistogram();
        long ios = 0, bytes = 0, errors = 0;
        double seconds = 0;
        string chosen = "";
        foreach (var job in jobs)
        {
            if (job.Failure is not null) throw job.Failure;
            lat.Add(job.Latency);
            ios += job.Ios;
            bytes += job.Bytes;
            errors += job.Errors;
            seconds = Math.Max(seconds, job.Seconds);
            chosen = job.EngineName;
        }
        return new BlkBenchResult(ios, bytes, seconds, lat.PercentileNs(50), lat.PercentileNs(99), lat.PercentileNs(99.9),
            lat.MeanNs, lat.MaxNs, chosen, errors);
    }

    private sealed class Job(BlkBenchOptions o, BlockDevice device, IoEngine engine, ulong seed)
    {
        public readonly LatencyHistogram Latency = new();
        public long Ios, Bytes, Errors;
        public double Seconds;
        public string EngineName = "";
        public Exception? Failure;

        public void Run(Barrier start)
        {
            try
            {
                RunCore(start);
            }
            catch (Exception e)
            {
                Failure = e;
                start.RemoveParticipant();
            }
        }

        private void RunCore(Barrier start)
        {
            int depth = o.IoDepth;
            using var ring = Ring.Create((uint)depth, engine);
            EngineName = ring.Engine == IoEngine.Psync ? "psync" : "io_uring";
            using var buffers = NativeBuffer.Allocate((long)depth * o.BlockSize);
            buffers.Span.Fill(0x5A);
            bool fixedBuffers = ring.Engine == IoEngine.IoUring && ring.RegisterBuffers([new emu_iovec { @base = (ulong)buffers.Pointer, len = (ulong)buffers.Length }]) == 0;

            var ios = new emu_io[depth];
            var cqes = new emu_completion[depth];
            var submittedAt = new long[depth];
            var free = new int[depth];
            for (int i = 0; i < depth; i++) free[i] = i;
            int nfree = depth;
            long blocks = o.SizeBytes / o.BlockSize;
            long nextBlock = 0;
            ulong rng = seed | 1;
            ushort op = (ushort)(o.IsWrite ? emu_io_op.EMU_OP_WRITE : emu_io_op.EMU_OP_READ);
            ushort flags = (ushort)(fixedBuffers ? emu_io_flags.EMU_IO_FIXED_BUFFER : 0);
            int fd = device.Handle.DangerousGetFd();
            int inflight = 0;

            start.SignalAndWait();
            long t0 = Stopwatch.GetTimestamp();
            long deadline = t0 + (long)(o.Runtime.TotalSeconds * Stopwatch.Frequency);
            bool stopping = false;
            while (true)
            {
                if (!stopping && Stopwatch.GetTimestamp() >= deadline) stopping = true;
                if (!stopping && nfree > 0)
                {
                    int n = 0;
                    long now = Stopwatch.GetTimestamp();
                    while (nfree > 0)
                    {
                        int slot = free[--nfree];
                        long block;
                        if (o.IsRandom)
                        {
                            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                            block = (long)(rng % (ulong)blocks);
                        }
                        else
                        {
                            block = nextBlock;
                            if (++nextBlock == blocks) nextBlock = 0;
                        }
                        ref var io = ref ios[n++];
                        io.user_data = (ulong)slot;
                        io.offset = (ulong)(block * o.BlockSize);
                        io.buf = (ulong)buffers.Pointer + (ulong)((long)slot * o.BlockSize);
                        io.len = (uint)o.BlockSize;
                        io.fd = fd;
                        io.op = op;
                        io.flags = flags;
                        io.buf_index = 0;
                        submittedAt[slot] = now;
                    }
                    int accepted = ring.Submit(ios.AsSpan(0, n));
                    if (accepted < 0) throw new ShimException(accepted, "submitting I/O");
                    for (int i = n - 1; i >= accepted; i--) free[nfree++] = (int)ios[i].user_data;
                    inflight += accepted;
                }
                if (inflight == 0)
                {
                    if (stopping) break;
                    continue;
                }
                int reaped = ring.Reap(cqes, 1, 0);
                if (reaped < 0) throw new ShimException(reaped, "reaping completions");
                long done = Stopwatch.GetTimestamp();
                for (int i = 0; i < reaped; i++)
                {
                    ref var c = ref cqes[i];
                    int slot = (int)c.user_data;
                    Latency.Record((long)((done - submittedAt[slot]) * (1e9 / Stopwatch.Frequency)));
                    if (c.res == o.BlockSize) { Ios++; Bytes += c.res; }
                    else Errors++;
                    free[nfree++] = slot;
                }
                inflight -= reaped;
            }
            Seconds = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
        }
    }
}
