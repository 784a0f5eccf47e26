using System.Diagnostics;
using System.Runtime;
using System.Runtime.CompilerServices;
using Emu.Kernel;
using Emu.Kernel.Stats;

namespace Emu.Cli.Bench;

/// <summary>Queue-to-execute throughput of one mechanism over the rounds, and its queue-to-start latency.</summary>
internal sealed record WqBenchMechanism(string Name, double[] RoundOpsPerSec, LatencyHistogram Latency)
{
    public double MedianOpsPerSec => WqBench.Median(RoundOpsPerSec);
}

/// <summary>
/// Per-item cost of each side of Emu's unbound workqueue measured alone, in nanoseconds per round: queue_work into a
/// frozen workqueue, then its workers draining what was queued.
/// </summary>
internal sealed record WqBenchAlone(double[] QueueWorkNs, double[] WorkersNs)
{
    public double MedianQueueWorkNs => WqBench.Median(QueueWorkNs);

    public double MedianWorkersNs => WqBench.Median(WorkersNs);
}

internal sealed record WqBenchResult(int Items, int Rounds, int MaxActive, WqBenchMechanism ThreadPool, WqBenchMechanism EmuUnbound, WqBenchMechanism EmuBound, WqBenchAlone EmuUnboundAlone);

/// <summary>
/// `emu wq bench`: empty work items through Emu's unbound and bound workqueues against .NET's thread pool
/// (ThreadPool.UnsafeQueueUserWorkItem with preallocated IThreadPoolWorkItems). Every round queues the same
/// preallocated items from one producer as fast as it can and ends when the last one has run; the mechanisms
/// take turns, in a rotating order, after untimed warm-up passes (see WarmUp); the per-item code of both sides
/// is compiled optimized from its first call, as Emu's queueing and worker paths are. Latency is from just
/// before the queue call to the start of the item, recorded per executing thread (no allocation, no shared
/// histogram).
/// The workqueues get max_active = the number of CPUs by default, the thread pool's own concurrency: an unbound
/// workqueue wakes an idle worker for every item it has room for (no concurrency management), so with the
/// kernel's default of 256 a flood of empty items keeps a dozen kworkers fighting over two CPUs.
/// Last, the two sides of the unbound workqueue are timed alone (WqBenchAlone): what queue_work and the workers
/// cost by themselves, against what an item costs when they run at once and take the same pool->lock for every
/// item (as the kernel's do), which moves that lock's and the pool's cache lines between CPUs.
/// </summary>
internal static class WqBench
{
    private const int MaxWarmUpPasses = 8;
    private const int TieringQuietMs = 250;

    private static readonly double s_nsPerTick = 1e9 / Stopwatch.Frequency;

    /// <summary>The median of per-round values (the mean of the middle two for an even count).</summary>
    internal static double Median(double[] values)
    {
        double[] sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <param name="items">Items per round.</param>
    /// <param name="rounds">Timed rounds per mechanism.</param>
    /// <param name="maxActive">max_active of both workqueues; null for the number of CPUs, 0 for the kernel's default.</param>
    public static WqBenchResult Run(int items, int rounds, int? maxActive)
    {
        using AdoptedTask producer = EmuTask.Adopt("wq-bench");
        using var system = new WorkqueueSystem();
        int active = maxActive ?? system.Layout.NrCpus;
        Workqueue unbound = system.AllocWorkqueue("wq_bench_unbound", WqFlags.Unbound, active);
        Workqueue bound = system.AllocWorkqueue("wq_bench_bound", WqFlags.None, active);
        var alone = new WorkqueueMechanism("emu-unbound-alone", system.AllocWorkqueue("wq_bench_alone", WqFlags.Unbound | WqFlags.Freezable, active), items);

        var mechanisms = new Mechanism[]
        {
            new ThreadPoolMechanism("threadpool", items),
            new WorkqueueMechanism("emu-unbound", unbound, items),
            new WorkqueueMechanism("emu-bound", bound, items),
        };

        // The same preparation for every mechanism: a full collection makes the preallocated items the
        // long-lived objects they are in a running system, and untimed passes run until the JIT has nothing
        // left to compile, so that no timed round runs code that tiered compilation has not optimized yet.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        WarmUp(mechanisms);

        var perRound = mechanisms.Select(_ => new double[rounds]).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < mechanisms.Length; k++)
            {
                int i = (r + k) % mechanisms.Length;
                perRound[i][r] = mechanisms[i].RunRound(record: true);
            }
        }

        var queueWorkNs = new double[rounds];
        var workersNs = new double[rounds];
        alone.RunAlone(system);
        for (int r = 0; r < rounds; r++)
        {
            (queueWorkNs[r], workersNs[r]) = alone.RunAlone(system);
        }

        WqBenchMechanism Result(int i) => new(mechanisms[i].Name, perRound[i], mechanisms[i].Round.Latency);
        return new WqBenchResult(items, rounds, unbound.MaxActive, Result(0), Result(1), Result(2), new WqBenchAlone(queueWorkNs, workersNs));
    }

    // Untimed passes over every mechanism until one pass and the quiet period after it compiled nothing: the
    // runtime promotes hot methods to optimized code only after a quiet spell with no new methods (its
    // tiering delay, 100 ms), then on their next calls, and loops through on-stack replacement.
    private static void WarmUp(Mechanism[] mechanisms)
    {
        for (int pass = 0; pass < MaxWarmUpPasses; pass++)
        {
            long compiled = JitInfo.GetCompiledMethodCount();
            foreach (Mechanism m in mechanisms)
            {
                m.RunRound(record: false);
            }

            Sched.Msleep(TieringQuietMs);
            if (pass > 0 && JitInfo.GetCompiledMethodCount() == compiled)
            {
                return;
            }
        }
    }

    /// <summary>
    /// What the rounds of one mechanism share: the countdown, the end time, the completion the producer sleeps
    /// on, and a latency histogram per executing thread.
    /// </summary>
    private sealed class BenchRound
    {
        [ThreadStatic]
        private static LatencyHistogram? t_latency;

        [ThreadStatic]
        private static BenchRound? t_latencyOwner;

        private readonly Lock _histogramsLock = new();
        private readonly List<LatencyHistogram> _histograms = new(); // _histogramsLock
        private readonly LatencyHistogram _total = new();
        private long _remaining;
        private long _endTicks;
        private volatile bool _record;

        public Completion Done { get; } = new("&round->done");

        public long EndTicks => Volatile.Read(ref _endTicks);

        public LatencyHistogram Latency => _total;

        public void Reset(int items, bool record)
        {
            _record = record;
            Done.Reinit();
            Volatile.Write(ref _remaining, items);
        }

        // The body of every benchmark item: latency, then the countdown.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void ItemRuns(long queuedTicks)
        {
            if (_record)
            {
                LatencyHistogram latency = t_latencyOwner == this ? t_latency! : RegisterThread();
                latency.Record((long)((Stopwatch.GetTimestamp() - queuedTicks) * s_nsPerTick));
            }

            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                Volatile.Write(ref _endTicks, Stopwatch.GetTimestamp());
                Done.Complete();
            }
        }

        // After a round every item has run and nothing records any more, so the per-thread histograms can be
        // merged and cleared.
        public void Collect()
        {
            lock (_histogramsLock)
            {
                foreach (LatencyHistogram h in _histograms)
                {
                    _total.Add(h);
                    h.Clear();
                }
            }
        }

        private LatencyHistogram RegisterThread()
        {
            var latency = new LatencyHistogram();
            t_latency = latency;
            t_latencyOwner = this;
            lock (_histogramsLock)
            {
                _histograms.Add(latency);
            }

            return latency;
        }
    }

    private abstract class Mechanism(string name)
    {
        public string Name { get; } = name;

        public BenchRound Round { get; } = new();

        // Queues every item once and sleeps until the last has run; returns items per second.
        public double RunRound(bool record)
        {
            Round.Reset(ItemCount, record);
            long start = Stopwatch.GetTimestamp();
            QueueAll();
            Round.Done.WaitForCompletion();
            double seconds = (Round.EndTicks - start) / (double)Stopwatch.Frequency;
            if (record)
            {
                Round.Collect();
            }

            return ItemCount / seconds;
        }

        protected abstract int ItemCount { get; }

        protected abstract void QueueAll();
    }

    private sealed class ThreadPoolMechanism : Mechanism
    {
        private readonly PoolItem[] _items;

        public ThreadPoolMechanism(string name, int items)
            : base(name)
        {
            _items = new PoolItem[items];
            for (int i = 0; i < items; i++)
            {
                _items[i] = new PoolItem(Round);
            }
        }

        protected override int ItemCount => _items.Length;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        protected override void QueueAll()
        {
            foreach (PoolItem item in _items)
            {
                item.QueuedTicks = Stopwatch.GetTimestamp();
                ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false);
            }
        }

        private sealed class PoolItem(BenchRound round) : IThreadPoolWorkItem
        {
            public long QueuedTicks;

            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            public void Execute() => round.ItemRuns(QueuedTicks);
        }
    }

    private sealed class WorkqueueMechanism : Mechanism
    {
        private readonly Workqueue _wq;
        private readonly BenchWork[] _items;

        public WorkqueueMechanism(string name, Workqueue wq, int items)
            : base(name)
        {
            _wq = wq;
            _items = new BenchWork[items];
            for (int i = 0; i < items; i++)
            {
                _items[i] = new BenchWork(Round);
            }
        }

        protected override int ItemCount => _items.Length;

        // One side, then the other: every item is queued while the workqueue is frozen (max_active 0, so they
        // wait on its pwq's delayed list and no worker runs), then the workqueue is thawed and the workers drain
        // it. Each item does what it does in a round (clock read, latency record), so the per-item costs compare.
        // Returns nanoseconds per item of queueing and of draining.
        public (double QueueWorkNs, double WorkersNs) RunAlone(WorkqueueSystem system)
        {
            system.FreezeWorkqueuesBegin();
            Round.Reset(ItemCount, record: true);
            long start = Stopwatch.GetTimestamp();
            QueueAll();
            long queued = Stopwatch.GetTimestamp();
            system.ThawWorkqueues();
            Round.Done.WaitForCompletion();
            Round.Collect();
            return ((queued - start) * s_nsPerTick / ItemCount, (Round.EndTicks - queued) * s_nsPerTick / ItemCount);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        protected override void QueueAll()
        {
            foreach (BenchWork item in _items)
            {
                item.QueuedTicks = Stopwatch.GetTimestamp();
                _wq.QueueWork(item);
            }
        }

        private sealed class BenchWork(BenchRound round) : WorkStruct(s_benchWorkFn, "wq_bench_fn", "(&item->work)")
        {
            private static readonly WorkFunc s_benchWorkFn =
                [MethodImpl(MethodImplOptions.AggressiveOptimization)] static (w) => ((BenchWork)w).Run();

            public long QueuedTicks;

            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void Run() => round.ItemRuns(QueuedTicks);
        }
    }
}
