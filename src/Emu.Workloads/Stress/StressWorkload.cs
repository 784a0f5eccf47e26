// `emu stress`: the seed's fdm-stress, a mix of buffered writes, O_DIRECT reads spanning several blocks,
// O_DIRECT writes, sync(2) and snapshot creation against a few small files, with background writeback, on
// real threads - no pause points, only concurrency. Small files and multi-block operations make the
// deadlock's ingredients common: an O_DIRECT read's flush (filemap_write_and_wait_range of its own range)
// runs delalloc for a run reaching past the range, leaving an ordered extent with dirty pages; a read holds
// the blocks it mapped locked while it maps the next; a buffered writer holds pages while it waits for a
// range. Unpatched, the run stops at the first deadlock the wait-for graph reports (or a hang khungtaskd
// reports); patched, it runs for the whole runtime. Every read is checked against the shadow model, and every
// file once more after the run (after sync). For `emu compare` the mix can be shaped: how many data tasks
// read (StressOptions.Readers), a fixed size per operation (BlockSize), and a layout without conflicts where
// each task owns a slice of every file, so that neither kernel can deadlock and only their cost differs.
using System.Diagnostics;
using Emu.Btrfs;
using Emu.Kernel;
using Emu.Kernel.Stats;
using Emu.Workloads.Backing;

namespace Emu.Workloads.Stress;

/// <summary>Runs one stress workload.</summary>
public sealed class StressWorkload
{
    private const int MaxMismatchesKept = 100;
    private const long ConfirmMs = 250;
    private const int MaxTransientKept = 5;
    private static readonly StressOp[] s_dataRoles = [StressOp.BufferedWrite, StressOp.DirectRead];
    private static readonly int s_opCount = Enum.GetValues<StressOp>().Length;

    private readonly StressOptions _options;
    private readonly Machine _machine;
    private readonly ShadowModel _model;
    private readonly SeededSource _source;
    private readonly long[] _opCounts = new long[s_opCount]; // Interlocked: progress
    private readonly List<Worker> _workers = new();
    private readonly List<Mismatch> _mismatches = new();     // lock: itself
    private BtrfsInode[] _inodes = [];
    private long _mismatchCount;                              // Interlocked
    private long _verifiedBytes;                              // Interlocked
    private long _snapshots;                                  // Interlocked
    private long _ioErrors;                                   // Interlocked
    private string? _firstIoError;                            // written once
    private readonly List<Candidate> _candidates = new();      // lock: itself
    private readonly List<Candidate> _transient = new();       // lock: _candidates
    private readonly ManualResetEventSlim _detected = new();   // a cycle was reported and awaits confirmation
    private Candidate? _confirmed;                             // lock: _candidates
    private long _transientCount;                              // lock: _candidates
    private volatile bool _stop;

    private StressWorkload(StressOptions options, Machine machine)
    {
        _options = options;
        _machine = machine;
        _source = new SeededSource(options.Seed);
        _model = new ShadowModel(options.Files, options.BlocksPerFile, options.Seed);
    }

    private BtrfsFs Fs => _machine.Fs;

    /// <summary>
    /// Opens the backing store, boots, runs the workload and checks the files. A run that deadlocks or hangs
    /// leaves its blocked tasks as they are (the caller should exit the process soon after).
    /// </summary>
    /// <exception cref="WorkloadUsageException">Bad sizes, or the backing store was refused.</exception>
    public static StressResult Run(StressOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new WorkloadUsageException(problem);
        }

        BackingStore store = BackingStore.Open(options.Backing with { RequiredBytes = options.RequiredBackingBytes });
        Machine machine;
        try
        {
            machine = Machine.Boot(store, new MachineOptions
            {
                Mode = options.Mode,
                HungTaskTimeoutMs = options.HungTaskTimeoutMs,
                HungTaskCheckIntervalMs = Math.Max(10, Math.Min(500, options.HungTaskTimeoutMs / 4)),
                Console = options.Console,
                // Background writeback: the flusher's periodic pass every 100 ms for data older than 100 ms.
                Mount = new BtrfsMountOptions { DirtyWritebackCentisecs = 10, DirtyExpireCentisecs = 10 },
            });
        }
        catch
        {
            store.Dispose();
            throw;
        }

        return new StressWorkload(options, machine).Execute(store);
    }

    private StressResult Execute(BackingStore store)
    {
        int firstPid = 0;
        Machine.RunTask("fdm-stress", () =>
        {
            firstPid = EmuTask.CurrentOrThrow.Pid;
            CreateFiles();
        });
        var hung = new List<string>();
        void OnHung(EmuTask task, string text)
        {
            if (task.Pid >= firstPid)
            {
                lock (hung)
                {
                    hung.Add($"{task.Comm}:{task.Pid}");
                }
            }
        }

        _machine.Khungtaskd.TaskHung += OnHung;
        _machine.WaitForGraph.DeadlockDetected += OnDeadlock;
        StartWorkers();
        var clock = Stopwatch.StartNew();
        long startMs = Environment.TickCount64;
        DeadlockReport? deadlock = null;
        long nextProgress = 1000;
        while (true)
        {
            long left = (long)_options.Runtime.TotalMilliseconds - clock.ElapsedMilliseconds;
            if (left <= 0)
            {
                break;
            }

            long wait = Math.Min(left, Math.Max(1, nextProgress - clock.ElapsedMilliseconds));
            _detected.Wait((int)(PendingCandidates() ? Math.Min(wait, ConfirmMs / 5) : wait));
            _detected.Reset();
            deadlock = ConfirmedDeadlock();
            if (deadlock is not null || HungCount(hung) > 0)
            {
                _options.OnHang?.Invoke(deadlock is not null ? "deadlock" : "hung task");
                break;
            }

            if (clock.ElapsedMilliseconds >= nextProgress)
            {
                Progress(clock.Elapsed);
                nextProgress += 1000;
            }
        }

        _stop = true;
        long runtimeMs = clock.ElapsedMilliseconds;
        string? failure = null;
        bool finalDone = false;
        if (deadlock is null && HungCount(hung) == 0)
        {
            long joinTimeout = Math.Max(10_000, 3 * _options.HungTaskTimeoutMs);
            foreach (Worker w in _workers)
            {
                if (!w.Task.Join((int)joinTimeout))
                {
                    deadlock = ConfirmedDeadlock();
                    failure ??= deadlock is null && HungCount(hung) == 0 ? $"{w.Task.Comm}:{w.Task.Pid} did not stop within {joinTimeout} ms" : null;
                    break;
                }

                if (w.Task.Exception is { } e)
                {
                    failure ??= $"{w.Task.Comm}:{w.Task.Pid} ({w.Role}) failed: {e.GetType().Name}: {e.Message}";
                }
            }

            if (deadlock is null && HungCount(hung) == 0 && failure is null)
            {
                Machine.RunTask("fdm-stress", FinalCheck);
                finalDone = true;
            }
        }

        _machine.Khungtaskd.TaskHung -= OnHung;
        _machine.WaitForGraph.DeadlockDetected -= OnDeadlock;
        StressResult result = BuildResult(store, runtimeMs, startMs, deadlock, hung, failure, finalDone);
        if (finalDone)
        {
            _machine.Shutdown();
        }
        else
        {
            _machine.Abandon();
        }

        return result;
    }

    // DeadlockDetected: runs on the task closing the cycle, just before it blocks; it must not block. The
    // members' stacks are taken now, while they sleep where the cycle closed.
    private void OnDeadlock(DeadlockReport report)
    {
        EmuTask[] tasks = report.Tasks;
        var switches = new long[tasks.Length];
        for (int i = 0; i < tasks.Length; i++)
        {
            switches[i] = tasks[i].Nvcsw;
        }

        // The operations done up to the deadlock: a deadlocked run's throughput is measured up to here, not
        // over the confirmation period in which its tasks pile up behind the cycle.
        var counts = new long[s_opCount];
        for (int op = 0; op < s_opCount; op++)
        {
            counts[op] = Count((StressOp)op);
        }

        lock (_candidates)
        {
            _candidates.Add(new Candidate(report, WithStacks(report), switches, counts));
        }

        _detected.Set();
    }

    // A reported cycle is a deadlock once every member is still in the sleep it was reported in after a grace
    // period: a real cycle never resolves. One that did resolve (a lock whose recorded owner was not the task
    // that would release it, e.g. a page locked for I/O) is counted as transient and the run goes on.
    private DeadlockReport? ConfirmedDeadlock()
    {
        lock (_candidates)
        {
            long now = Environment.TickCount64;
            for (int c = 0; c < _candidates.Count; c++)
            {
                Candidate candidate = _candidates[c];
                EmuTask[] tasks = candidate.Report.Tasks;
                IWaitResource[] resources = candidate.Report.Resources;
                bool stuck = true;
                for (int i = 0; i < tasks.Length && stuck; i++)
                {
                    stuck = tasks[i].Nvcsw == candidate.Switches[i] && tasks[i].WaitingOn == resources[i] &&
                            tasks[i].State is not TaskState.Running and not TaskState.Dead;
                }

                if (!stuck)
                {
                    if (_transientCount++ < MaxTransientKept)
                    {
                        _transient.Add(candidate);
                    }

                    _candidates.RemoveAt(c--);
                }
                else if (now - candidate.Report.DetectedAtMs >= ConfirmMs)
                {
                    _confirmed = candidate;
                    return candidate.Report;
                }
            }

            return null;
        }
    }

    private bool PendingCandidates()
    {
        lock (_candidates)
        {
            return _candidates.Count > 0;
        }
    }

    private static int HungCount(List<string> hung)
    {
        lock (hung)
        {
            return hung.Count;
        }
    }

    private void CreateFiles()
    {
        _inodes = new BtrfsInode[_options.Files];
        byte[] buf = new byte[StressOptions.MaxBlocksPerOp * Payload.BlockSize];
        for (int f = 0; f < _options.Files; f++)
        {
            _inodes[f] = Fs.CreateFile();
            VfsFile file = Fs.Open(_inodes[f]);
            for (int b = 0; b < _options.BlocksPerFile; b += StressOptions.MaxBlocksPerOp)
            {
                int blocks = Math.Min(StressOptions.MaxBlocksPerOp, _options.BlocksPerFile - b);
                WriteTicket t = _model.BeginWrite(f, b, blocks);
                Span<byte> data = buf.AsSpan(0, blocks * Payload.BlockSize);
                Payload.FillRange(data, _model.Seed, f, (long)b * Payload.BlockSize, t.Id);
                long n = ReadWrite.SysPwrite64(file, data, (long)b * Payload.BlockSize);
                _model.EndWrite(t, n > 0 ? (int)(n / Payload.BlockSize) : 0);
            }

            Fs.Fsync(file);
        }
    }

    private void StartWorkers()
    {
        int index = 0;
        for (int i = 0; i < _options.Tasks; i++)
        {
            AddWorker(_options.Readers is { } readers ? (i < readers ? StressOp.DirectRead : StressOp.BufferedWrite) : s_dataRoles[i % s_dataRoles.Length], index++);
        }

        for (int i = 0; i < _options.DirectWriters; i++)
        {
            AddWorker(StressOp.DirectWrite, index++);
        }

        if (_options.Syncer)
        {
            AddWorker(StressOp.Sync, index);
        }

        if (_options.Snapshotter)
        {
            AddWorker(StressOp.Snapshot, index + 1);
        }

        foreach (Worker w in _workers)
        {
            w.Task.Start();
        }
    }

    private void AddWorker(StressOp role, int index)
    {
        var worker = new Worker(role, _source.ForTask(index), index);
        worker.Task = new EmuTask("fdm-stress", () => WorkerLoop(worker));
        _workers.Add(worker);
    }

    private void WorkerLoop(Worker w)
    {
        var buffered = new VfsFile[_inodes.Length];
        var direct = new VfsFile[_inodes.Length];
        for (int f = 0; f < _inodes.Length; f++)
        {
            buffered[f] = Fs.Open(_inodes[f]);
            direct[f] = Fs.Open(_inodes[f], OpenFlags.Direct);
        }

        byte[] buf = new byte[_options.MaxOpBlocks * Payload.BlockSize];
        var local = new List<Mismatch>();
        long snapshotIntervalMs = Math.Max(20, (long)_options.Runtime.TotalMilliseconds / (StressOptions.MaxSnapshots - StressOptions.EarlySnapshots));
        while (!_stop)
        {
            long t0 = Stopwatch.GetTimestamp();
            switch (w.Role)
            {
                case StressOp.BufferedWrite:
                    Write(w, buffered, buf, 1, StressOptions.MaxBlocksPerOp);
                    break;
                case StressOp.DirectWrite:
                    Write(w, direct, buf, 1, StressOptions.MaxBlocksPerOp / 2);
                    break;
                case StressOp.DirectRead:
                    Read(w, direct, buf, local);
                    break;
                case StressOp.Sync:
                    Fs.Sync();
                    break;
                case StressOp.Snapshot:
                    if (Interlocked.Read(ref _snapshots) >= StressOptions.MaxSnapshots)
                    {
                        Sched.ScheduleTimeoutInterruptible(100);
                        continue;
                    }

                    Fs.CreateSnapshot("snap-" + Interlocked.Increment(ref _snapshots));
                    break;
            }

            w.Latency[(int)w.Role].Record((long)Stopwatch.GetElapsedTime(t0).TotalNanoseconds);
            Interlocked.Increment(ref _opCounts[(int)w.Role]);
            if (local.Count > 0)
            {
                lock (_mismatches)
                {
                    foreach (Mismatch m in local)
                    {
                        if (_mismatches.Count < MaxMismatchesKept)
                        {
                            _mismatches.Add(m);
                        }
                    }
                }

                Interlocked.Add(ref _mismatchCount, local.Count);
                local.Clear();
            }

            // sync(2) and snapshots come often, but not back to back: a short nap between them.
            if (w.Role == StressOp.Sync)
            {
                Sched.ScheduleTimeoutInterruptible(w.Rng.Between(1, 10));
            }
            else if (w.Role == StressOp.Snapshot)
            {
                bool early = Interlocked.Read(ref _snapshots) < StressOptions.EarlySnapshots;
                Sched.ScheduleTimeoutInterruptible(early ? w.Rng.Between(1, 20) : w.Rng.Between((int)snapshotIntervalMs / 2, (int)snapshotIntervalMs));
            }
        }
    }

    private void Write(Worker w, VfsFile[] files, byte[] buf, int minBlocks, int maxBlocks)
    {
        int f = w.Rng.Next(files.Length);
        (int first, int blocks) = PickBlocks(w, minBlocks, maxBlocks);
        long offset = (long)first * Payload.BlockSize;
        Span<byte> data = buf.AsSpan(0, blocks * Payload.BlockSize);
        WriteTicket t = _model.BeginWrite(f, first, blocks);
        Payload.FillRange(data, _model.Seed, f, offset, t.Id);
        long n = ReadWrite.SysPwrite64(files[f], data, offset);
        _model.EndWrite(t, n > 0 ? (int)(n / Payload.BlockSize) : 0);
        if (n != data.Length)
        {
            NoteIoError($"{(files[f].Flags == OpenFlags.Direct ? "O_DIRECT" : "buffered")} write of [{offset}, {offset + data.Length}) of file {f} returned {n}");
        }
    }

    // The blocks of one data operation: --bs blocks, or a random count, anywhere in the file or, without
    // conflicts, inside the task's own slice.
    private (int First, int Blocks) PickBlocks(Worker w, int minBlocks, int maxBlocks)
    {
        int span = _options.BlocksPerTask;
        int lo = _options.Conflicts ? 0 : w.Slice * span;
        int blocks = _options.BlockSize is { } bs ? (int)(bs / Payload.BlockSize) : w.Rng.Between(minBlocks, maxBlocks);
        blocks = Math.Min(blocks, span);
        return (lo + w.Rng.Next(span - blocks + 1), blocks);
    }

    private void NoteIoError(string what)
    {
        if (Interlocked.Increment(ref _ioErrors) == 1)
        {
            Volatile.Write(ref _firstIoError, what);
        }
    }

    private void Read(Worker w, VfsFile[] files, byte[] buf, List<Mismatch> mismatches)
    {
        int f = w.Rng.Next(files.Length);
        (int first, int blocks) = PickBlocks(w, 2, StressOptions.MaxBlocksPerOp);
        long offset = (long)first * Payload.BlockSize;
        Span<byte> data = buf.AsSpan(0, blocks * Payload.BlockSize);
        data.Clear();
        ReadTicket t = _model.BeginRead(f);
        long n = ReadWrite.SysPread64(files[f], data, offset);
        if (n != data.Length)
        {
            // An error or a short read is no data to check; it is counted, and fails the run.
            _model.EndRead(t, _inodes[f].Ino, first, default, "", mismatches);
            NoteIoError($"O_DIRECT read of [{offset}, {offset + data.Length}) of file {f} returned {n}");
            return;
        }

        int good = _model.EndRead(t, _inodes[f].Ino, first, data, $"O_DIRECT read of [{offset}, {offset + data.Length})", mismatches);
        Interlocked.Add(ref _verifiedBytes, (long)good * Payload.BlockSize);
    }

    // After the run: sync, then every block of every file through O_DIRECT and through the page cache.
    private void FinalCheck()
    {
        Fs.Sync();
        var local = new List<Mismatch>();
        byte[] buf = new byte[StressOptions.MaxBlocksPerOp * Payload.BlockSize];
        for (int f = 0; f < _inodes.Length; f++)
        {
            foreach (OpenFlags flags in new[] { OpenFlags.Direct, OpenFlags.None })
            {
                VfsFile file = Fs.Open(_inodes[f], flags);
                for (int b = 0; b < _options.BlocksPerFile; b += StressOptions.MaxBlocksPerOp)
                {
                    int blocks = Math.Min(StressOptions.MaxBlocksPerOp, _options.BlocksPerFile - b);
                    long offset = (long)b * Payload.BlockSize;
                    Span<byte> data = buf.AsSpan(0, blocks * Payload.BlockSize);
                    data.Clear();
                    ReadTicket t = _model.BeginRead(f);
                    long n = ReadWrite.SysPread64(file, data, offset);
                    string how = flags == OpenFlags.Direct ? "O_DIRECT" : "buffered";
                    if (n != data.Length)
                    {
                        _model.EndRead(t, _inodes[f].Ino, b, default, "", local);
                        NoteIoError($"final {how} read of [{offset}, {offset + data.Length}) of file {f} returned {n}");
                        continue;
                    }

                    int good = _model.EndRead(t, _inodes[f].Ino, b, data, $"final {how} read after sync", local);
                    Interlocked.Add(ref _verifiedBytes, (long)good * Payload.BlockSize);
                }
            }
        }

        lock (_mismatches)
        {
            foreach (Mismatch m in local)
            {
                if (_mismatches.Count < MaxMismatchesKept)
                {
                    _mismatches.Add(m);
                }
            }
        }

        Interlocked.Add(ref _mismatchCount, local.Count);
    }

    private void Progress(TimeSpan elapsed)
    {
        if (_options.Progress is not { } progress)
        {
            return;
        }

        string line = $"bwrite {Count(StressOp.BufferedWrite)}  dread {Count(StressOp.DirectRead)}  " +
                      $"dwrite {Count(StressOp.DirectWrite)}  sync {Count(StressOp.Sync)}  snap {Count(StressOp.Snapshot)}  " +
                      $"mismatches {Interlocked.Read(ref _mismatchCount)}";
        progress(elapsed, line);
    }

    private long Count(StressOp op) => Interlocked.Read(ref _opCounts[(int)op]);

    private StressResult BuildResult(BackingStore store, long runtimeMs, long startMs, DeadlockReport? deadlock, List<string> hung, string? failure, bool finalDone)
    {
        var stats = new List<StressOpStats>();
        long[]? countsAtDeadlock = ConfirmedCounts();
        double seconds = Math.Max(0.001, (deadlock is not null && countsAtDeadlock is not null ? deadlock.DetectedAtMs - startMs : runtimeMs) / 1000.0);
        for (int op = 0; op < s_opCount; op++)
        {
            var merged = new LatencyHistogram();
            foreach (Worker w in _workers)
            {
                // Tasks still running (a deadlocked run) are read racily; the numbers are a snapshot.
                merged.Add(w.Latency[op]);
            }

            long count = countsAtDeadlock?[op] ?? Count((StressOp)op);
            stats.Add(new StressOpStats((StressOp)op, count, count / seconds,
                merged.PercentileNs(50) / 1000.0, merged.PercentileNs(99) / 1000.0, merged.PercentileNs(99.9) / 1000.0, LatencyBuckets.Of(merged)));
        }

        Mismatch[] mismatches;
        lock (_mismatches)
        {
            mismatches = _mismatches.ToArray();
        }

        string[] hungTasks;
        lock (hung)
        {
            hungTasks = hung.Distinct().ToArray();
        }

        return new StressResult
        {
            Mode = _options.Mode,
            Seed = _options.Seed,
            Backing = store.Description,
            Engine = store.EngineName,
            Options = _options,
            RuntimeMs = runtimeMs,
            Stats = stats,
            Deadlocked = deadlock is not null,
            TimeToFirstDeadlockMs = deadlock is null ? null : deadlock.DetectedAtMs - startMs,
            DeadlockReport = ConfirmedLines(),
            TransientCycles = TransientLines(),
            TransientCycleCount = TransientCount(),
            HungTasks = hungTasks,
            Mismatches = mismatches,
            MismatchCount = Interlocked.Read(ref _mismatchCount),
            VerifiedBytes = Interlocked.Read(ref _verifiedBytes),
            FinalCheckDone = finalDone,
            Snapshots = Interlocked.Read(ref _snapshots),
            IoErrors = Interlocked.Read(ref _ioErrors),
            TornBlocks = _model.TornBlocks,
            FirstIoError = Volatile.Read(ref _firstIoError),
            Failure = failure,
        };
    }

    // The report, then each cycle member as sched_show_task() prints it, with the locks it holds: the stacks
    // show which kernel paths met (the reports khungtaskd would print a timeout later).
    private static string[] WithStacks(DeadlockReport report)
    {
        var lines = new List<string>(report.Lines);
        foreach (EmuTask task in report.Tasks)
        {
            TaskDump.SchedShowTask(task, lines);
            lines.AddRange(HeldLocks.Format(task).Split('\n'));
        }

        return lines.ToArray();
    }

    private string[] ConfirmedLines()
    {
        lock (_candidates)
        {
            return _confirmed?.Lines ?? [];
        }
    }

    private string[] TransientLines()
    {
        lock (_candidates)
        {
            return _transient.SelectMany(c => c.Lines).ToArray();
        }
    }

    private long TransientCount()
    {
        lock (_candidates)
        {
            return _transientCount;
        }
    }

    private long[]? ConfirmedCounts()
    {
        lock (_candidates)
        {
            return _confirmed?.Counts;
        }
    }

    private sealed record Candidate(DeadlockReport Report, string[] Lines, long[] Switches, long[] Counts);

    // One user task of the mix.
    private sealed class Worker(StressOp role, Rng rng, int slice)
    {
        public readonly StressOp Role = role;
        public readonly Rng Rng = rng;
        public readonly int Slice = slice;
        public readonly LatencyHistogram[] Latency = NewHistograms();
        public EmuTask Task = null!;

        private static LatencyHistogram[] NewHistograms()
        {
            var h = new LatencyHistogram[s_opCount];
            for (int i = 0; i < h.Length; i++)
            {
                h[i] = new LatencyHistogram();
            }

            return h;
        }
    }
}
