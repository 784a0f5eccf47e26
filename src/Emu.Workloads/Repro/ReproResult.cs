// What `emu repro` found in one run, and the seed's expectations it is checked against (the call traces of
// the hung-task reports in ade770294df2's commit message, innermost first).
using System.Text.Json;
using Emu.Btrfs;

namespace Emu.Workloads.Repro;

/// <summary>The parts each task plays in the scenario (the seed's cast).</summary>
public static class ReproRoles
{
    /// <summary>The O_DIRECT reader of [0, 12K) (CPU 1 of the diagram).</summary>
    public const string DioReader = "dio-reader";

    /// <summary>The buffered writer of [0, 12K) that blocks on the io-tree range (CPU 2).</summary>
    public const string BufferedWriter = "buffered-writer";

    /// <summary>The snapshot creation waiting in btrfs_wait_ordered_extents.</summary>
    public const string Snapshot = "snapshot";

    /// <summary>sync(2) blocked on root->ordered_extent_mutex in btrfs_wait_ordered_roots.</summary>
    public const string Sync = "sync";

    /// <summary>The btrfs-flush_delalloc worker running btrfs_run_ordered_extent_work.</summary>
    public const string FlushWorker = "flush_delalloc-worker";

    /// <summary>The writeback worker in wb_workfn.</summary>
    public const string WritebackWorker = "writeback-worker";

    /// <summary>
    /// The seed's call-trace frames for each role, innermost first: a report must contain them in this order
    /// (other frames may sit between them).
    /// </summary>
    public static IReadOnlyDictionary<string, string[]> SeedFrames { get; } = new Dictionary<string, string[]>
    {
        [DioReader] =
        [
            "lock_page", "extent_write_cache_pages", "extent_writepages", "btrfs_writepages", "do_writepages",
            "__filemap_fdatawrite_range", "filemap_fdatawrite_range", "btrfs_start_ordered_extent",
            "btrfs_get_blocks_direct", "do_blockdev_direct_IO", "__blockdev_direct_IO", "btrfs_direct_IO",
            "generic_file_read_iter", "__vfs_read", "vfs_read", "SyS_read",
        ],
        [BufferedWriter] =
        [
            "lock_extent_bits", "lock_and_cleanup_extent_if_need", "__btrfs_buffered_write", "btrfs_file_write_iter",
            "__vfs_write", "vfs_write", "SyS_write",
        ],
        [Snapshot] =
        [
            "wait_for_completion", "btrfs_wait_ordered_extents", "btrfs_mksubvol", "btrfs_ioctl_snap_create_transid",
            "btrfs_ioctl_snap_create_v2", "btrfs_ioctl", "do_vfs_ioctl", "SyS_ioctl",
        ],
        [Sync] =
        [
            "mutex_lock_nested", "btrfs_wait_ordered_extents", "btrfs_wait_ordered_roots", "btrfs_sync_fs",
            "sync_fs_one_sb", "iterate_supers", "sys_sync",
        ],
        [FlushWorker] =
        [
            "lock_page", "extent_write_cache_pages", "extent_writepages", "btrfs_writepages", "do_writepages",
            "__filemap_fdatawrite_range", "filemap_fdatawrite_range", "btrfs_start_ordered_extent",
            "btrfs_run_ordered_extent_work", "process_one_work", "worker_thread", "kthread",
        ],
        [WritebackWorker] =
        [
            "lock_page", "extent_write_cache_pages", "extent_writepages", "btrfs_writepages", "do_writepages",
            "__writeback_single_inode", "writeback_sb_inodes", "__writeback_inodes_wb", "wb_writeback", "wb_workfn",
            "process_one_work", "worker_thread", "kthread",
        ],
    };

    /// <summary>The "Workqueue:" line each worker role shows, up to its first space-separated words.</summary>
    public static IReadOnlyDictionary<string, string> SeedWorkqueues { get; } = new Dictionary<string, string>
    {
        [FlushWorker] = "btrfs-flush_delalloc btrfs_flush_delalloc_helper",
        [WritebackWorker] = "writeback wb_workfn",
    };

    /// <summary>The seed frames of <paramref name="role"/> missing from <paramref name="frames"/> (in order), or empty.</summary>
    public static string[] MissingFrames(string role, IReadOnlyList<string> frames)
    {
        if (!SeedFrames.TryGetValue(role, out string[]? expected))
        {
            return [];
        }

        var missing = new List<string>();
        int at = 0;
        foreach (string want in expected)
        {
            int found = -1;
            for (int i = at; i < frames.Count; i++)
            {
                if (frames[i] == want)
                {
                    found = i;
                    break;
                }
            }

            if (found < 0)
            {
                missing.Add(want);
            }
            else
            {
                at = found + 1;
            }
        }

        return missing.ToArray();
    }
}

/// <summary>A task of the scenario.</summary>
/// <param name="Role">Its part (<see cref="ReproRoles"/>).</param>
/// <param name="Comm">Its name.</param>
/// <param name="Pid">Its pid.</param>
public sealed record ReproTask(string Role, string Comm, int Pid);

/// <summary>One wait of the cycle or of a victim: <paramref name="Task"/> waits for <paramref name="Resource"/>, held by <paramref name="Holder"/>.</summary>
public sealed record ReproWait(ReproTask Task, string Resource, ReproTask Holder);

/// <summary>One hung-task report.</summary>
/// <param name="Task">The hung task.</param>
/// <param name="Workqueue">The "Workqueue:" text for a worker, else null.</param>
/// <param name="Frames">The call trace, innermost first.</param>
/// <param name="Locks">The held-locks listing lines.</param>
/// <param name="BlockedForMs">How long it had been blocked when reported.</param>
/// <param name="ReportedAtMs">When it was reported, in ms since the run started.</param>
/// <param name="MissingSeedFrames">The seed's frames for its role that the trace lacks (empty: it matches).</param>
public sealed record ReproHungTask(ReproTask Task, string? Workqueue, IReadOnlyList<string> Frames, IReadOnlyList<string> Locks,
    long BlockedForMs, long ReportedAtMs, IReadOnlyList<string> MissingSeedFrames);

/// <summary>The outcome of one `emu repro` run in one mode.</summary>
public sealed record ReproResult
{
    /// <summary>The mode run.</summary>
    public required BtrfsMode Mode { get; init; }

    /// <summary>The backing store, e.g. "mem (256MiB RAM disk)".</summary>
    public required string Backing { get; init; }

    /// <summary>The engine that ran.</summary>
    public required string Engine { get; init; }

    /// <summary>The scenario's tasks.</summary>
    public IReadOnlyList<ReproTask> Tasks { get; init; } = [];

    /// <summary>Whether the wait-for graph found a circular wait.</summary>
    public bool Deadlocked { get; init; }

    /// <summary>Time from the start of the run to the cycle's detection, in ms.</summary>
    public long? TimeToCycleMs { get; init; }

    /// <summary>Time from the cycle closing (the last member's sleep) to its report, in ms.</summary>
    public long? DetectionLatencyMs { get; init; }

    /// <summary>Time from the start of the run until the last expected hung-task report, in ms.</summary>
    public long? TimeToReportsMs { get; init; }

    /// <summary>The cycle's waits, in wait order.</summary>
    public IReadOnlyList<ReproWait> Cycle { get; init; } = [];

    /// <summary>The tasks blocked behind the cycle.</summary>
    public IReadOnlyList<ReproWait> Victims { get; init; } = [];

    /// <summary>The hung-task reports of the scenario's tasks.</summary>
    public IReadOnlyList<ReproHungTask> HungTasks { get; init; } = [];

    /// <summary>Whether every task of the scenario finished (patched).</summary>
    public bool Completed { get; init; }

    /// <summary>Bytes the DIO read returned (patched).</summary>
    public long ReadBytes { get; init; }

    /// <summary>Bytes checked against what the writes left (the read's, then the whole file's after sync).</summary>
    public long VerifiedBytes { get; init; }

    /// <summary>Data mismatches: file, offset, expected, found.</summary>
    public IReadOnlyList<string> Mismatches { get; init; } = [];

    /// <summary>Why the scenario could not be driven (a step did not happen), or null.</summary>
    public string? Failure { get; init; }

    /// <summary>The cycle's report lines as printed to the kernel log.</summary>
    public IReadOnlyList<string> CycleReport { get; init; } = [];

    /// <summary>The kernel log of the run, as dmesg prints it.</summary>
    public IReadOnlyList<string> KernelLog { get; init; } = [];

    /// <summary>
    /// Whether the run showed the kernel's behaviour for its mode: unpatched deadlocked with the DIO reader and
    /// the buffered writer in the cycle and every seed victim reported hung with the seed's frames; patched
    /// completed with the data verified.
    /// </summary>
    public bool Reproduced => Failure is null && (Mode == BtrfsMode.Unpatched
        ? Deadlocked && CycleIsSeeds && HungTasks.Count == ReproRoles.SeedFrames.Count && HungTasks.All(h => h.MissingSeedFrames.Count == 0)
        : !Deadlocked && Completed && Mismatches.Count == 0 && VerifiedBytes > 0);

    /// <summary>Whether the cycle is the seed's: the DIO reader and the buffered writer, waiting on each other.</summary>
    public bool CycleIsSeeds => Cycle.Count == 2 &&
        Cycle.Any(w => w.Task.Role == ReproRoles.DioReader && w.Holder.Role == ReproRoles.BufferedWriter && w.Resource.StartsWith("page ", StringComparison.Ordinal)) &&
        Cycle.Any(w => w.Task.Role == ReproRoles.BufferedWriter && w.Holder.Role == ReproRoles.DioReader && w.Resource.StartsWith("extent range ", StringComparison.Ordinal));

    /// <summary>Writes the result as one JSON object.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteString("mode", Mode.ToString().ToLowerInvariant());
        w.WriteString("backing", Backing);
        w.WriteString("engine", Engine);
        w.WriteBoolean("deadlocked", Deadlocked);
        WriteNullable(w, "timeToCycleMs", TimeToCycleMs);
        WriteNullable(w, "detectionLatencyMs", DetectionLatencyMs);
        WriteNullable(w, "timeToReportsMs", TimeToReportsMs);
        w.WriteStartArray("tasks");
        foreach (ReproTask t in Tasks)
        {
            WriteTask(w, null, t);
        }

        w.WriteEndArray();
        w.WriteStartArray("cycle");
        foreach (ReproWait e in Cycle)
        {
            WriteWait(w, e);
        }

        w.WriteEndArray();
        w.WriteStartArray("victims");
        foreach (ReproWait e in Victims)
        {
            WriteWait(w, e);
        }

        w.WriteEndArray();
        w.WriteStartArray("hungTasks");
        foreach (ReproHungTask h in HungTasks)
        {
            w.WriteStartObject();
            WriteTask(w, "task", h.Task);
            if (h.Workqueue is null)
            {
                w.WriteNull("workqueue");
            }
            else
            {
                w.WriteString("workqueue", h.Workqueue);
            }

            w.WriteNumber("blockedForMs", h.BlockedForMs);
            w.WriteNumber("reportedAtMs", h.ReportedAtMs);
            WriteStrings(w, "frames", h.Frames);
            WriteStrings(w, "locks", h.Locks);
            WriteStrings(w, "missingSeedFrames", h.MissingSeedFrames);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteBoolean("completed", Completed);
        w.WriteNumber("readBytes", ReadBytes);
        w.WriteNumber("verifiedBytes", VerifiedBytes);
        WriteStrings(w, "mismatches", Mismatches);
        WriteStrings(w, "cycleReport", CycleReport);
        WriteStrings(w, "kernelLog", KernelLog);
        if (Failure is null)
        {
            w.WriteNull("failure");
        }
        else
        {
            w.WriteString("failure", Failure);
        }

        w.WriteBoolean("reproduced", Reproduced);
        w.WriteEndObject();
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void WriteTask(Utf8JsonWriter w, string? name, ReproTask t)
    {
        if (name is null)
        {
            w.WriteStartObject();
        }
        else
        {
            w.WriteStartObject(name);
        }

        w.WriteString("role", t.Role);
        w.WriteString("comm", t.Comm);
        w.WriteNumber("pid", t.Pid);
        w.WriteEndObject();
    }

    private static void WriteWait(Utf8JsonWriter w, ReproWait e)
    {
        w.WriteStartObject();
        WriteTask(w, "task", e.Task);
        w.WriteString("resource", e.Resource);
        WriteTask(w, "holder", e.Holder);
        w.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        foreach (string s in values)
        {
            w.WriteStringValue(s);
        }

        w.WriteEndArray();
    }
}
