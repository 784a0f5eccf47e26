using System.Diagnostics;
using Emu.Block;
using Emu.Interop;
using Emu.Kernel;
using Emu.Kernel.Stats;

namespace Emu.Cli.Bench;

/// <summary>
/// fio-style load through Emu's block layer: a disk (GenDisk) over the chosen engine, and numjobs EmuTasks that each
/// keep iodepth bios in flight. A job submits every free slot under one plug (one engine submission per batch),
/// then sleeps on its own wait queue, through the kernel sleeping path, until bi_end_io (completion context) hands
/// slots back. Completion latency runs from submit_bio to bi_end_io, fio's clat.
/// Engines: io_uring, psync (over <paramref name="device"/>), mem (a RAM disk of --size bytes), null (no data).
/// </summary>
internal static class BlockLayerBench
{
    private const int StartTimeoutMs = 60_000;

    public static BlkBenchResult Run(BlkBenchOptions o, BlockDevice? device)
    {
        BlkEngine engine = CreateEngine(o, device);
        int depth = Math.Min(Math.Max(o.IoDepth * o.NumJobs, 8), BlkMqTagSet.MaxDepth);
        // psync performs each batch inside the hardware queue's submit: a queue per CPU lets jobs on different CPUs
        // run their I/O side by side, as fio's psync jobs do.
        var set = new BlkMqTagSet { QueueDepth = depth, NrHwQueues = o.IoEngine == "psync" ? Environment.ProcessorCount : 0 };
        using GenDisk disk = GenDisk.Create("emubench", engine, set);
        var start = new Completion("bench start");
        var jobs = new Job[o.NumJobs];
        var tasks = new EmuTask[o.NumJobs];
        for (int j = 0; j < o.NumJobs; j++)
        {
            var job = jobs[j] = new Job(o, disk, o.Seed + (ulong)j * 0x9E3779B97F4A7C15UL, start);
            tasks[j] = EmuTask.Run($"fio-job/{j}", job.Run);
        }

        start.CompleteAll();
        foreach (EmuTask task in tasks)
        {
            if (!task.Join((int)Math.Min(int.MaxValue, o.Runtime.TotalMilliseconds + StartTimeoutMs)))
            {
                throw new InvalidOperationException($"{task} did not finish");
            }

            if (task.Exception is { } e)
            {
                throw new InvalidOperationException($"{task} failed: {e.Message}", e);
            }
        }

        var lat = new LatencyHistogram();
        long ios = 0, bytes = 0, errors = 0;
        double seconds = 0;
        foreach (Job job in jobs)
        {
            lat.Add(job.Latency);
            ios += job.Ios;
            bytes += job.Bytes;
            errors += job.Errors;
            seconds = Math.Max(seconds, job.Seconds);
        }

        return new BlkBenchResult(ios, bytes, seconds, lat.PercentileNs(50), lat.PercentileNs(99), lat.PercentileNs(99.9),
            lat.MeanNs, lat.MaxNs, engine.Name, errors);
    }

    private static BlkEngine CreateEngine(BlkBenchOptions o, BlockDevice? device) => o.IoEngine switch
    {
        "io_uring" => new UringEngine(device ?? throw new ArgumentNullException(nameof(device)), auto: false),
        "psync" => new PsyncEngine(device ?? throw new ArgumentNullException(nameof(device))),
        "mem" => new MemEngine(o.SizeBytes),
        "null" => new NullEngine(o.SizeBytes),
        _ => throw new ArgumentException($"unknown ioengine '{o.IoEngine}'", nameof(o)),
    };

    // One in-flight I/O of a job: its buffer, its bio while in flight, and the times bi_end_io stamps.
    private sealed class Slot(Job job, nint buffer)
    {
        public readonly Job Job = job;
        public readonly nint Buffer = buffer;
        public long SubmitTs;
        public long EndTs;
        public int Error;
        public Slot? NextDone; // the job's completed-slot stack
    }

    private sealed class Job
    {
        // bi_end_io for every bench bio: cached once, no closure per I/O.
        private static readonly Action<Bio> s_endIo = EndIo;

        private readonly BlkBenchOptions _o;
        private readonly GenDisk _disk;
        private readonly Completion _start;
        private readonly BioSet _bios;
        private readonly WaitQueueHead _wait = new(new NamedWaitResource("bench job completions"));
        private readonly BlkPlug _plug = new();
        private readonly Slot[] _free;
        private ulong _rng;
        private long _nextBlock;
        private Slot? _done; // Interlocked: slots completed by bi_end_io, not yet reclaimed

        public Job(BlkBenchOptions o, GenDisk disk, ulong seed, Completion start)
        {
            _o = o;
            _disk = disk;
            _start = start;
            _rng = seed | 1;
            _bios = new BioSet(o.IoDepth, 1);
            _free = new Slot[o.IoDepth];
        }

        public readonly LatencyHistogram Latency = new();
        public long Ios, Bytes, Errors;
        public double Seconds;

        public void Run()
        {
            int depth = _o.IoDepth;
            int bs = _o.BlockSize;
            using NativeBuffer buffers = NativeBuffer.Allocate((long)depth * bs);
            buffers.Span.Fill(0x5A);
            for (int i = 0; i < depth; i++)
            {
                _free[i] = new Slot(this, buffers.Pointer + (nint)((long)i * bs));
            }

            int nfree = depth;
            long blocks = _o.SizeBytes / bs;
            ReqOp op = _o.IsWrite ? ReqOp.Write : ReqOp.Read;
            int sectorsPerBlock = bs >> Blk.SectorShift;
            _start.WaitForCompletion();

            long t0 = Stopwatch.GetTimestamp();
            long deadline = t0 + (long)(_o.Runtime.TotalSeconds * Stopwatch.Frequency);
            bool stopping = false;
            while (true)
            {
                nfree += Reclaim(nfree);
                if (!stopping && Stopwatch.GetTimestamp() >= deadline)
                {
                    stopping = true;
                }

                if (!stopping && nfree > 0)
                {
                    BlkCore.BlkStartPlug(_plug);
                    while (nfree > 0)
                    {
                        Slot slot = _free[--nfree];
                        Bio bio = _bios.Alloc(1);
                        bio.BiDisk = _disk;
                        bio.BiOp = op;
                        bio.BiSector = NextBlock(blocks) * sectorsPerBlock;
                        bio.AddBuffer(slot.Buffer, (uint)bs);
                        bio.BiEndIo = s_endIo;
                        bio.BiPrivate = slot;
                        slot.SubmitTs = Stopwatch.GetTimestamp();
                        BlkCore.SubmitBio(bio);
                    }

                    BlkCore.BlkFinishPlug(_plug);
                }

                if (nfree == depth)
                {
                    if (stopping)
                    {
                        break;
                    }

                    continue;
                }

                Wait.WaitEvent(_wait, static j => Volatile.Read(ref j._done) is not null, this);
            }

            Seconds = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
        }

        // bi_end_io, in completion context: stamp, give the bio back, push the slot, wake the job if it sleeps.
        private static void EndIo(Bio bio)
        {
            long now = Stopwatch.GetTimestamp();
            var slot = (Slot)bio.BiPrivate!;
            slot.EndTs = now;
            slot.Error = bio.BiError;
            bio.Put();
            Job job = slot.Job;
            Slot? head;
            do
            {
                head = Volatile.Read(ref job._done);
                slot.NextDone = head;
            }
            while (Interlocked.CompareExchange(ref job._done, slot, head) != head);

            // The exchange above is a full fence: it orders the push before the look at the wait queue.
            if (job._wait.Active)
            {
                Wait.WakeUp(job._wait);
            }
        }

        // Takes every completed slot back onto the free stack, recording latency; returns how many.
        private int Reclaim(int nfree)
        {
            Slot? slot = Interlocked.Exchange(ref _done, null);
            int n = 0;
            double nsPerTick = 1e9 / Stopwatch.Frequency;
            while (slot is not null)
            {
                Slot? next = slot.NextDone;
                slot.NextDone = null;
                Latency.Record((long)((slot.EndTs - slot.SubmitTs) * nsPerTick));
                if (slot.Error == 0)
                {
                    Ios++;
                    Bytes += _o.BlockSize;
                }
                else
                {
                    Errors++;
                }

                _free[nfree + n++] = slot;
                slot = next;
            }

            return n;
        }

        private long NextBlock(long blocks)
        {
            if (_o.IsRandom)
            {
                _rng ^= _rng << 13;
                _rng ^= _rng >> 7;
                _rng ^= _rng << 17;
                return (long)(_rng % (ulong)blocks);
            }

            long block = _nextBlock;
            if (++_nextBlock == blocks)
            {
                _nextBlock = 0;
            }

            return block;
        }
    }
}
