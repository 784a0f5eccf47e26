// `emu repro`: the deadlock of ade770294df2, driven step by step on a fresh filesystem.
//
// The state of kernel-paths.md's walk-through is built with real kernel paths and explicit hand-offs (pause
// points and "until asleep" waits, ScenarioController), never with sleeps:
//  1. sync(2) (fdm-stress) runs its writeback passes over a clean file and stops before
//     btrfs_wait_ordered_roots, so it later blocks where the seed's sync did.
//  2. A buffered write dirties [4K, 8K) of a 12 KiB file whose data is on disk.
//  3. The O_DIRECT read of [0, 12K) starts: generic_file_read_iter's filemap_write_and_wait_range tags the
//     range's dirty pages for writeback (page 1 only) and stops before locking page 1.
//  4. A buffered write dirties [8K, 12K): the delalloc run is now [4K, 12K), but page 2 was not tagged.
//  5. The read's flush goes on: writing page 1 runs delalloc for the whole run - cow_file_range creates the
//     ordered extent [4K, 12K) (not DIRECT) and unlocks page 2, still dirty - and ends after page 1 (page 2
//     is not tagged), waiting only for page 1. The read then maps [0, 4K), which stays locked in the io tree
//     with its bio not yet submitted, and stops (DioBlockMapped).
//  6. The buffered write of [0, 12K) locks pages 0-2 and blocks in lock_extent_bits on [0, 4K).
//  7. A snapshot (fdm-stress) waits in btrfs_wait_ordered_extents for the flush work it queued: a
//     btrfs-flush_delalloc kworker in btrfs_start_ordered_extent, blocked on page 2.
//  8. sync goes on and blocks on root->ordered_extent_mutex, which the snapshot holds.
//  9. Memory reclaim kicks the flusher (wakeup_flusher_threads): wb_workfn blocks on page 2.
// 10. The read goes on to [4K, 8K) and meets the ordered extent. v4.4 starts it and waits: its
//     filemap_fdatawrite_range sleeps on page 2, held by the writer, which waits for [0, 4K), held by the
//     read - the cycle. v4.6 returns -ENOTBLK: the [0, 4K) bio is submitted and completes, the writer gets its
//     range, sees the ordered extent and lets its pages go, and everything finishes; the read returns 12 KiB.
// Unpatched, the wait-for graph reports the cycle as the read's sleep closes it, and khungtaskd (timeout 1 s by
// default) reports the six blocked tasks with the seed's call traces. Patched, every task finishes and the
// read and the file are checked block by block against the writes (Payload).
// Differs from the walk-through: the ordered extent with a dirty page is made by the read's own range flush,
// not by a separate flusher. A writeback pass that goes on to page 2 writes it (a WB_SYNC_NONE pass finds it
// dirty; a WB_SYNC_ALL pass finds it tagged) unless its trylock fails, and it only submits page 1's bio when it
// does - but the writer cannot hold page 2 before page 1's writeback has ended (prepare_pages waits for it).
// So the pass must end after page 1: a range flush whose TOWRITE tagging ran before page 2 was dirtied.
using System.Diagnostics;
using Emu.Btrfs;
using Emu.Kernel;
using Emu.Workloads.Backing;

namespace Emu.Workloads.Repro;

/// <summary>How to run the repro.</summary>
public sealed record ReproOptions
{
    /// <summary>Bytes of backing store the repro asks for.</summary>
    public const long BackingBytes = 64L << 20;

    /// <summary>The default hung-task timeout of the repro: 1 s.</summary>
    public const long DefaultHungTaskTimeoutMs = 1000;

    /// <summary>The kernel to emulate.</summary>
    public BtrfsMode Mode { get; init; } = BtrfsMode.Unpatched;

    /// <summary>hung_task_timeout_secs, in ms.</summary>
    public long HungTaskTimeoutMs { get; init; } = DefaultHungTaskTimeoutMs;

    /// <summary>The backing store (its size is set by the repro).</summary>
    public BackingOptions Backing { get; init; } = new();

    /// <summary>Where the kernel log is echoed as it is written, or null.</summary>
    public TextWriter? Console { get; init; }

    /// <summary>The longest one scripted step may take before the run is declared failed.</summary>
    public int StepTimeoutMs { get; init; } = 10_000;

    /// <summary>
    /// Called once with "deadlock" when the cycle is reported and khungtaskd has reported the seed's tasks, while
    /// they still sleep where they stuck: e.g. to dump the process.
    /// </summary>
    public Action<string>? OnHang { get; init; }
}

/// <summary>Runs the repro scenario once.</summary>
public sealed class ReproScenario
{
    private const int File0 = 0;
    private const ulong Seed = 0;
    private const int Size = 3 * Payload.BlockSize;
    private const long WriteSetup = 1;   // [0, 12K) before the scenario, on disk
    private const long WriteFirst = 2;   // [4K, 8K)
    private const long WriteSecond = 3;  // [8K, 12K)
    private const long WriteBlocked = 4; // [0, 12K), the writer of the cycle

    private readonly Machine _machine;
    private readonly ReproOptions _options;
    private readonly long _startMs;
    private readonly Dictionary<EmuTask, string> _roles = new();
    private BtrfsInode _inode = null!;
    private byte[] _readData = [];
    private long _readResult = long.MinValue;

    private ReproScenario(Machine machine, ReproOptions options, long startMs)
    {
        _machine = machine;
        _options = options;
        _startMs = startMs;
    }

    private BtrfsFs Fs => _machine.Fs;

    /// <summary>
    /// Opens the backing store, boots, drives the scenario and reports. An unpatched run leaves its deadlocked
    /// tasks blocked (the caller should exit the process soon after); a patched run shuts the machine down.
    /// </summary>
    /// <exception cref="WorkloadUsageException">The backing store was refused.</exception>
    public static ReproResult Run(ReproOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        long start = Environment.TickCount64;
        BackingStore store = BackingStore.Open(options.Backing with { RequiredBytes = ReproOptions.BackingBytes });
        Machine machine;
        try
        {
            machine = Machine.Boot(store, new MachineOptions
            {
                Mode = options.Mode,
                HungTaskTimeoutMs = options.HungTaskTimeoutMs,
                HungTaskCheckIntervalMs = Math.Max(10, Math.Min(100, options.HungTaskTimeoutMs / 10)),
                Console = options.Console,
                // The kernel's 30 s expiry: the periodic pass leaves the scenario's pages to the script.
                Mount = new BtrfsMountOptions { DirtyExpireCentisecs = 3000 },
            });
        }
        catch
        {
            store.Dispose();
            throw;
        }

        return new ReproScenario(machine, options, start).Drive(store);
    }

    private ReproResult Drive(BackingStore store)
    {
        var controller = new ScenarioController { StepTimeoutMs = _options.StepTimeoutMs };
        controller.Install();
        var hungSeen = new HashSet<EmuTask>();
        var allHung = new ManualResetEventSlim();
        void OnHung(EmuTask task, string text)
        {
            lock (_roles)
            {
                if (_roles.ContainsKey(task) && hungSeen.Add(task) && hungSeen.Count == ReproRoles.SeedFrames.Count)
                {
                    allHung.Set();
                }
            }
        }

        _machine.Khungtaskd.TaskHung += OnHung;
        EmuTask[] scenarioTasks;
        long closeAt;
        try
        {
            (scenarioTasks, closeAt) = BuildDeadlockState(controller);
        }
        catch (ScenarioException e)
        {
            controller.Dispose();
            _machine.Abandon();
            return BaseResult(store) with { Failure = e.Message, KernelLog = _machine.Log.FormattedLines };
        }

        ReproResult result = _options.Mode == BtrfsMode.Unpatched
            ? AwaitDeadlock(store, closeAt, allHung)
            : AwaitCompletion(store, scenarioTasks);
        controller.Dispose();
        _machine.Khungtaskd.TaskHung -= OnHung;
        result = result with { KernelLog = _machine.Log.FormattedLines };
        if (result.Deadlocked || !result.Completed)
        {
            _machine.Abandon();
        }
        else
        {
            _machine.Shutdown();
        }

        return result;
    }

    // Steps 1-9 of the header; returns the tasks that must finish in patched mode and when step 10 started.
    private (EmuTask[] Tasks, long CloseAt) BuildDeadlockState(ScenarioController controller)
    {
        UserTask("setup", () =>
        {
            _inode = Fs.CreateFile();
            VfsFile f = Fs.Open(_inode);
            Pwrite(f, 0, Size, WriteSetup);
            Check(Fs.Fsync(f) == 0, "fsync of the set-up data failed");
        });
        long ino = _inode.Ino;

        // 1. sync, up to btrfs_wait_ordered_roots.
        var sync = new EmuTask("fdm-stress", Fs.Sync);
        SetRole(sync, ReproRoles.Sync);
        ScenarioGate syncGate = controller.PauseWhere(sync, SchedPoint.MutexLock,
            static t => IsIn(t, "mutex_lock_nested", "btrfs_wait_ordered_roots"), "sync before btrfs_wait_ordered_roots");
        sync.Start();
        syncGate.WaitArrived(_options.StepTimeoutMs);

        // 2. dirty page 1.
        UserTask("write [4K, 8K)", () => Pwrite(Fs.Open(_inode), Payload.BlockSize, Payload.BlockSize, WriteFirst));

        // 3. the DIO read's flush tags page 1 and stops before locking it.
        var reader = new EmuTask("fdm-stress", ReadDirect);
        SetRole(reader, ReproRoles.DioReader);
        ScenarioGate flushGate = controller.PauseAt(reader, SchedPoint.WritepagesNextPage,
            d => d is Page p && p.InodeNumber == ino && p.Index == 1, "the DIO read's writeback reaches page 1");
        ScenarioGate mappedGate = controller.PauseAt(reader, SchedPoint.DioBlockMapped,
            d => d is DioMappedRange r && r.Inode == _inode && r.Start == 0, "the DIO read mapped [0, 4K)");
        reader.Start();
        flushGate.WaitArrived(_options.StepTimeoutMs);

        // 4. dirty page 2 (untagged).
        UserTask("write [8K, 12K)", () => Pwrite(Fs.Open(_inode), 2 * Payload.BlockSize, Payload.BlockSize, WriteSecond));

        // 5. the flush creates the ordered extent [4K, 12K) and writes page 1; the read maps [0, 4K).
        flushGate.Release();
        mappedGate.WaitArrived(_options.StepTimeoutMs);
        BtrfsOrderedExtent? ordered = OrderedData.BtrfsLookupOrderedRange(_inode, Payload.BlockSize, 2 * Payload.BlockSize);
        Check(ordered is not null && ordered.FileOffset == Payload.BlockSize && ordered.Len == 2 * Payload.BlockSize && !ordered.TestFlag(OrderedFlag.Direct),
            $"the read's flush did not leave a buffered ordered extent [4096, 12287] (found {ordered?.Describe() ?? "none"})");
        Check(PageDirty(2), "page 2 is not dirty after the ordered extent was created");

        // 6. the buffered write of [0, 12K) blocks on [0, 4K).
        var writer = new EmuTask("fdm-stress", () =>
        {
            VfsFile f = Fs.Open(_inode);
            f.Pos = 0;
            byte[] buf = new byte[Size];
            Payload.FillRange(buf, Seed, File0, 0, WriteBlocked);
            Check(ReadWrite.SysWrite(f, buf) == Size, "the buffered write of [0, 12K) was short");
        });
        SetRole(writer, ReproRoles.BufferedWriter);
        writer.Start();
        controller.WaitUntil(() => ScenarioController.IsAsleepOn(writer, static r => r is ExtentState),
            "the buffered write blocking in lock_extent_bits");

        // 7. the snapshot and its flush_delalloc worker.
        var snapshot = new EmuTask("fdm-stress", () => Check(Fs.CreateSnapshot("snap-1") == 0, "snapshot creation failed"));
        SetRole(snapshot, ReproRoles.Snapshot);
        snapshot.Start();
        controller.WaitUntil(() => ScenarioController.IsAsleepOn(snapshot, static r => r is Completion) && WorkerOnPage2("btrfs-flush_delalloc") is not null,
            "the snapshot waiting for its btrfs-flush_delalloc work, blocked on page 2");
        SetRole(WorkerOnPage2("btrfs-flush_delalloc")!, ReproRoles.FlushWorker);

        // 8. sync blocks on root->ordered_extent_mutex.
        syncGate.Release();
        controller.WaitUntil(() => ScenarioController.IsAsleepOn(sync, static r => r is KMutex),
            "sync blocking on root->ordered_extent_mutex");

        // 9. memory reclaim kicks the flusher.
        Machine.RunTask("kswapd0", () => FsSync.WakeupFlusherThreads(WbReason.Background));
        controller.WaitUntil(() => WorkerOnPage2("writeback") is not null, "wb_workfn blocking on page 2");
        SetRole(WorkerOnPage2("writeback")!, ReproRoles.WritebackWorker);

        // 10. the read meets the ordered extent.
        long closeAt = Environment.TickCount64;
        mappedGate.Release();
        return ([reader, writer, snapshot, sync], closeAt);
    }

    private ReproResult AwaitDeadlock(BackingStore store, long closeAt, ManualResetEventSlim allHung)
    {
        DeadlockReport? report = _machine.WaitForGraph.WaitForDeadlock(_options.StepTimeoutMs);
        if (report is null)
        {
            return BaseResult(store) with { Failure = $"no circular wait was detected within {_options.StepTimeoutMs} ms of the read meeting the ordered extent" };
        }

        // khungtaskd reports each task once it has slept for the timeout; allow two timeouts and a scan.
        allHung.Wait((int)(2 * _options.HungTaskTimeoutMs + 1000));
        _options.OnHang?.Invoke("deadlock");
        var hung = new List<ReproHungTask>();
        var seen = new HashSet<EmuTask>();
        long lastReport = 0;
        foreach (HungTaskReport h in _machine.Khungtaskd.Reports)
        {
            if (RoleOf(h.Task) is not { } role || !seen.Add(h.Task))
            {
                continue;
            }

            long at = h.ReportedAtMs - _startMs;
            lastReport = Math.Max(lastReport, at);
            hung.Add(new ReproHungTask(Describe(h.Task), h.Workqueue, h.Frames, LockLines(h), h.BlockedForMs, at,
                ReproRoles.MissingFrames(role, h.Frames)));
        }

        return BaseResult(store) with
        {
            Deadlocked = true,
            TimeToCycleMs = report.DetectedAtMs - _startMs,
            DetectionLatencyMs = Math.Max(0, report.DetectedAtMs - closeAt),
            TimeToReportsMs = hung.Count == ReproRoles.SeedFrames.Count ? lastReport : null,
            Cycle = report.Cycle.Select(e => new ReproWait(Describe(e.Waiter), e.Resource.Describe(), Describe(e.Holder))).ToArray(),
            Victims = report.Victims.Select(v => new ReproWait(Describe(v.Task), v.Resource.Describe(), Describe(v.Through))).ToArray(),
            HungTasks = hung,
            CycleReport = report.Lines,
        };
    }

    private ReproResult AwaitCompletion(BackingStore store, EmuTask[] tasks)
    {
        long deadline = Environment.TickCount64 + _options.StepTimeoutMs;
        foreach (EmuTask t in tasks)
        {
            if (!t.Join((int)Math.Max(1, deadline - Environment.TickCount64)))
            {
                return BaseResult(store) with
                {
                    Deadlocked = _machine.WaitForGraph.DeadlocksDetected > 0,
                    Failure = $"{t.Comm}:{t.Pid} ({RoleOf(t)}) did not finish within {_options.StepTimeoutMs} ms",
                };
            }

            if (t.Exception is { } e)
            {
                return BaseResult(store) with { Failure = $"{t.Comm}:{t.Pid} ({RoleOf(t)}) failed: {e.Message}" };
            }
        }

        var mismatches = new List<string>();
        long verified = 0;
        if (_readResult != Size)
        {
            mismatches.Add($"the O_DIRECT read of [0, {Size}) returned {_readResult}, expected {Size} bytes");
        }
        else
        {
            // Block 0 came from disk by direct IO before the writer could write it; blocks 1-2 came from the page
            // cache, holding the first writes' data or the blocked writer's, depending on who ran first.
            verified += VerifyBlocks(_readData, "the O_DIRECT read", [[WriteSetup], [WriteFirst, WriteBlocked], [WriteSecond, WriteBlocked]], mismatches);
        }

        byte[] direct = new byte[Size];
        byte[] buffered = new byte[Size];
        long directRead = 0;
        long bufferedRead = 0;
        UserTask("verify", () =>
        {
            Fs.Sync();
            VfsFile f = Fs.Open(_inode, OpenFlags.Direct);
            for (int b = 0; b < Size; b += Payload.BlockSize)
            {
                directRead += Math.Max(0, ReadWrite.SysPread64(f, direct.AsSpan(b, Payload.BlockSize), b));
            }

            bufferedRead = ReadWrite.SysPread64(Fs.Open(_inode), buffered, 0);
        });
        long[][] final = [[WriteBlocked], [WriteBlocked], [WriteBlocked]];
        if (directRead != Size || bufferedRead != Size)
        {
            mismatches.Add($"reading the file back after sync returned {directRead} (O_DIRECT) and {bufferedRead} (buffered) bytes, expected {Size}");
        }
        else
        {
            verified += VerifyBlocks(direct, "the file on disk after sync", final, mismatches);
            verified += VerifyBlocks(buffered, "the page cache after sync", final, mismatches);
        }

        return BaseResult(store) with
        {
            Deadlocked = _machine.WaitForGraph.DeadlocksDetected > 0,
            Completed = true,
            ReadBytes = Math.Max(0, _readResult),
            VerifiedBytes = verified,
            Mismatches = mismatches,
        };
    }

    private long VerifyBlocks(byte[] data, string what, long[][] legal, List<string> mismatches)
    {
        long verified = 0;
        for (int b = 0; b < legal.Length; b++)
        {
            long offset = (long)b * Payload.BlockSize;
            ReadOnlySpan<byte> block = data.AsSpan(b * Payload.BlockSize, Payload.BlockSize);
            long found = Payload.Identify(block, Seed, File0, offset);
            if (Array.IndexOf(legal[b], found) >= 0)
            {
                verified += Payload.BlockSize;
            }
            else
            {
                string expected = string.Join(" or ", legal[b].Select(id => "write " + id));
                mismatches.Add($"{what}: file inode {_inode.Ino} offset {offset}: expected {expected}, found {Payload.Describe(block, Seed, File0, offset)}");
            }
        }

        return verified;
    }

    private ReproResult BaseResult(BackingStore store)
    {
        EmuTask[] tasks;
        lock (_roles)
        {
            tasks = _roles.Keys.ToArray();
        }

        return new ReproResult
        {
            Mode = _options.Mode,
            Backing = store.Description,
            Engine = store.EngineName,
            Tasks = tasks.Select(Describe).OrderBy(t => t.Pid).ToArray(),
        };
    }

    // The roles are read by khungtaskd's report handler while the script assigns them.
    private void SetRole(EmuTask task, string role)
    {
        lock (_roles)
        {
            _roles[task] = role;
        }
    }

    private string? RoleOf(EmuTask task)
    {
        lock (_roles)
        {
            return _roles.TryGetValue(task, out string? role) ? role : null;
        }
    }

    private ReproTask Describe(EmuTask task) => new(RoleOf(task) ?? "other", task.Comm, task.Pid);

    private static string[] LockLines(HungTaskReport h)
    {
        int at = -1;
        for (int i = 0; i < h.Lines.Count; i++)
        {
            if (h.Lines[i].Contains(" held by ", StringComparison.Ordinal))
            {
                at = i;
            }
        }

        return at < 0 ? [] : h.Lines.Skip(at).ToArray();
    }

    // The DIO reader's body: read(2) of [0, 12K) on an O_DIRECT file.
    private void ReadDirect()
    {
        VfsFile f = Fs.Open(_inode, OpenFlags.Direct);
        f.Pos = 0;
        byte[] buf = new byte[Size];
        _readResult = ReadWrite.SysRead(f, buf);
        _readData = buf;
    }

    private static void Pwrite(VfsFile f, long offset, int length, long writeId)
    {
        byte[] buf = new byte[length];
        Payload.FillRange(buf, Seed, File0, offset, writeId);
        Check(ReadWrite.SysPwrite64(f, buf, offset) == length, $"the write of [{offset}, {offset + length}) was short");
    }

    private bool PageDirty(long index)
    {
        Page? page = PageCache.FindGetPage(_inode.Mapping, index);
        if (page is null)
        {
            return false;
        }

        bool dirty = page.Test(PageFlags.Dirty);
        PageCache.PageCacheRelease(page);
        return dirty;
    }

    // The workqueue worker (of the workqueue named by the "Workqueue:" prefix) asleep on page 2 of the file.
    private EmuTask? WorkerOnPage2(string workqueue)
    {
        long ino = _inode.Ino;
        foreach (EmuTask t in TaskList.Snapshot())
        {
            if ((t.Flags & TaskFlags.WqWorker) != 0 &&
                ScenarioController.IsAsleepOn(t, r => r is Page p && p.InodeNumber == ino && p.Index == 2) &&
                TaskDump.PrintWorkerInfo(t) is { } info && info.StartsWith(workqueue + " ", StringComparison.Ordinal))
            {
                return t;
            }
        }

        return null;
    }

    private static bool IsIn(EmuTask t, string innermost, string caller)
    {
        string[] frames = t.Frames;
        return frames.Length >= 2 && frames[0] == innermost && frames[1] == caller;
    }

    private static void UserTask(string what, Action body)
    {
        try
        {
            Machine.RunTask("fdm-stress", body);
        }
        catch (InvalidOperationException e)
        {
            throw new ScenarioException($"{what}: {e.InnerException?.Message ?? e.Message}");
        }
    }

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new ScenarioException(message);
        }
    }
}
