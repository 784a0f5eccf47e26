using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Emu.Btrfs;
using Emu.Cli.Diagnostics;
using Emu.Cli.Progress;
using Emu.Workloads;
using Emu.Workloads.Stress;

namespace Emu.Cli.Commands;

/// <summary>`emu stress`: the seed's fdm-stress, randomized from one seed, every read checked against a shadow model.</summary>
internal static class StressCommand
{
    public static Command Create()
    {
        var mode = new Option<string>("--mode") { Description = "unpatched (v4.4 lock_extent_direct: stops at the first deadlock) or patched (v4.6).", DefaultValueFactory = _ => "unpatched" };
        var files = new Option<int>("--files") { Description = "Files the tasks share.", DefaultValueFactory = _ => 2 };
        var fileSize = new Option<string>("--file-size") { Description = "Bytes per file, a multiple of 4k (e.g. 64k, 1M).", DefaultValueFactory = _ => "64k" };
        var tasks = new Option<int>("--tasks") { Description = "Data tasks, alternately buffered writers and O_DIRECT readers; a syncer and a snapshotter run besides them, and the flusher writes back in the background.", DefaultValueFactory = _ => 4 };
        var dioWriters = new Option<int>("--dio-writers")
        {
            Description = "O_DIRECT writers besides --tasks. With them v4.6 deadlocks too, as the real kernel can (README): a DIO read " +
                          "waits for a DIRECT ordered extent while holding a block whose bio it has not sent, and that extent's " +
                          "btrfs_finish_ordered_io can wait for that block.",
            DefaultValueFactory = _ => 0,
        };
        var readers = new Option<int?>("--readers") { Description = "O_DIRECT readers among the data tasks (with --writers: the data tasks are readers + writers)." };
        var writers = new Option<int?>("--writers") { Description = "Buffered writers among the data tasks (with --readers: the data tasks are readers + writers)." };
        var noConflicts = new Option<bool>("--no-conflicts") { Description = "Give each data task its own slice of every file: no O_DIRECT read meets a writer's pages or ordered extents." };
        var noSync = new Option<bool>("--no-sync") { Description = "No task calling sync(2)." };
        var noSnapshots = new Option<bool>("--no-snapshots") { Description = "No task creating snapshots." };
        var bs = new Option<string?>("--bs") { Description = "Bytes per data operation, a multiple of 4k up to 128k (default: random, 4k to 32k)." };
        var runtime = new Option<string>("--runtime") { Description = "How long to run unless a deadlock or hang stops it first (seconds, or 500ms, 1m).", DefaultValueFactory = _ => "60" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of every random choice (printed; default: a new one)." };
        var hung = new Option<string>("--hung-task-timeout") { Description = "khungtaskd's hung_task_timeout (seconds, or 500ms).", DefaultValueFactory = _ => "2" };
        var quiet = new Option<bool>("--quiet") { Description = "No progress lines and no kernel log; only the summary." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (no progress, no kernel log)." };
        var dumpOnHang = new Option<string?>("--dump-on-hang") { Description = "When a deadlock or hung task stops the run, write a dump of this process (managed heap included) to this file, once; read it with emu diagnose --stacks." };
        var command = new Command("stress",
            "fdm-stress: buffered writes, O_DIRECT reads spanning several extents, O_DIRECT writes, sync and snapshots on a few small " +
            "files, on real threads with no scripting; stops at the first deadlock (exit 1) or after --runtime. Every read is checked " +
            "against a shadow model of what each block may legally hold; every file is checked again at the end, after sync.")
        {
            mode, files, fileSize, tasks, dioWriters, readers, writers, noConflicts, noSync, noSnapshots, bs, runtime, seed, hung, quiet, json,
        };
        command.Options.Add(dumpOnHang);
        WorkloadOptions.AddBacking(command, out var engine, out var backing, out var force);
        var trace = TraceFiles.AddOption(command);
        command.SetAction(p => Execute(p.GetValue(mode)!, p.GetValue(files), p.GetValue(fileSize)!, p.GetValue(tasks), p.GetValue(dioWriters),
            new Mix(p.GetValue(readers), p.GetValue(writers), !p.GetValue(noConflicts), !p.GetValue(noSync), !p.GetValue(noSnapshots), p.GetValue(bs)), p.GetValue(runtime)!,
            p.GetValue(seed), p.GetValue(hung)!, p.GetValue(quiet), p.GetValue(json), p.GetValue(engine)!, p.GetValue(backing), p.GetValue(force), p.GetValue(trace), p.GetValue(dumpOnHang)));
        return command;
    }

    // The task mix: --readers, --writers, --no-conflicts, --no-sync, --no-snapshots, --bs.
    private sealed record Mix(int? Readers, int? Writers, bool Conflicts, bool Syncer, bool Snapshotter, string? BlockSize);

    private static int Execute(string modeText, int files, string fileSizeText, int tasks, int dioWriters, Mix mix, string runtimeText, ulong? seed, string hungText,
        bool quiet, bool json, string engine, string? backing, bool force, string? tracePath, string? dumpOnHangPath)
    {
        var mode = modeText switch
        {
            "unpatched" => BtrfsMode.Unpatched,
            "patched" => BtrfsMode.Patched,
            _ => throw new UsageException($"--mode '{modeText}' is not a mode; use unpatched or patched"),
        };
        long fileSize = SizeParser.Parse(fileSizeText, "--file-size");
        long runtimeMs = WorkloadOptions.ParseDuration(runtimeText, "--runtime");
        long hungMs = WorkloadOptions.ParseDuration(hungText, "--hung-task-timeout");
        if (hungMs < 10) throw new UsageException($"--hung-task-timeout {hungText} is too short; use at least 10ms");
        bool text = !json;
        if (mix.Readers is < 0 || mix.Writers is < 0) throw new UsageException("--readers and --writers must not be negative");
        if (mix.Readers is not null || mix.Writers is not null)
            tasks = mix.Readers is { } r && mix.Writers is { } w ? r + w : Math.Max(tasks, mix.Readers ?? mix.Writers ?? 0);
        int? readerTasks = mix.Readers ?? (mix.Writers is { } onlyWriters ? tasks - onlyWriters : null);
        ProgressDisplay display = ProgressDisplay.For(quiet || json);
        var options = new StressOptions
        {
            Mode = mode,
            Files = files,
            FileSize = fileSize,
            Tasks = tasks,
            DirectWriters = dioWriters,
            Readers = readerTasks,
            Conflicts = mix.Conflicts,
            Syncer = mix.Syncer,
            Snapshotter = mix.Snapshotter,
            BlockSize = mix.BlockSize is null ? null : SizeParser.Parse(mix.BlockSize, "--bs"),
            Runtime = TimeSpan.FromMilliseconds(runtimeMs),
            Seed = seed ?? SeededSource.NewSeed(),
            HungTaskTimeoutMs = hungMs,
            Backing = WorkloadOptions.ParseBacking(engine, backing, force),
            Console = text && !quiet ? display.Output : null,
            OnHang = DumpWriter.OnHang(dumpOnHangPath is null ? null : DumpWriter.CheckPath(dumpOnHangPath, force: false, "--dump-on-hang")),
        };
        if (options.Validate() is { } problem) throw new UsageException(problem);
        string? traceFile = TraceFiles.Validate(tracePath);
        if (text)
        {
            Console.WriteLine($"emu stress: {ReproCommand.ModeName(mode)}, seed {options.Seed}, {files} files x {SizeParser.Format(fileSize)}, " +
                              $"{tasks} data tasks{(dioWriters > 0 ? $" + {dioWriters} O_DIRECT writers" : "")}{(mix.Syncer ? " + syncer" : "")}{(mix.Snapshotter ? " + snapshotter" : "")}, runtime {runtimeMs / 1000.0:0.###}s (replay with --seed {options.Seed})");
            Console.Out.Flush();
        }
        using var trace = TraceFiles.Start(traceFile, $"emu stress {ReproCommand.ModeName(mode)} seed {options.Seed}",
            ("mode", ReproCommand.ModeName(mode)), ("seed", options.Seed.ToString(CultureInfo.InvariantCulture)));
        StressResult result;
        try
        {
            result = display.Run("stress", runtimeMs / 1000.0, "s",
                step => StressWorkload.Run(options with { Progress = (elapsed, line) => step.Report(elapsed.TotalSeconds, line) }));
        }
        catch (WorkloadUsageException e)
        {
            throw new UsageException(e.Message);
        }
        trace?.Write();

        WorkloadOptions.WarnIfFellBack(options.Backing, result.Engine);
        if (json)
        {
            Console.WriteLine(JsonText.Of(result.WriteJson));
        }
        else
        {
            WriteSummary(Console.Out, result, quiet);
        }
        Console.Out.Flush();
        if (result.Deadlocked || result.HungTasks.Count > 0 || result.MismatchCount > 0 || result.IoErrors > 0) return CommandRunner.ExitDetected;
        return result.Failure is null ? CommandRunner.ExitOk : CommandRunner.ExitInternal;
    }

    // What the fix of ade770294df2 has to do with the deadlock found. v4.6 (patched) has it, so a patched deadlock
    // is another one; with O_DIRECT writers v4.6 still deadlocks (README, `--dio-writers`), so an unpatched
    // deadlock is then not surely the one it fixed.
    internal static string FixNote(BtrfsMode mode, int directWriters) => (mode, directWriters > 0) switch
    {
        (BtrfsMode.Unpatched, false) => "the fix that would have avoided it: ade770294df2 (Linux 4.6), `--mode patched`.",
        (BtrfsMode.Unpatched, true) => "ade770294df2 (Linux 4.6, `--mode patched`) fixed O_DIRECT reads against buffered writes; with O_DIRECT " +
                                        "writers too, v4.6 can still deadlock (README: `--dio-writers`).",
        (_, true) => "not the deadlock ade770294df2 fixed (v4.6 has that fix): with O_DIRECT writers, v4.6 has others, which Emu " +
                     "reproduces too (README: `--dio-writers`).",
        _ => "not the deadlock ade770294df2 fixed: v4.6 (patched) has that fix.",
    };

    private static void WriteSummary(TextWriter o, StressResult r, bool quiet)
    {
        o.WriteLine();
        o.WriteLine($"Summary ({ReproCommand.ModeName(r.Mode)}, seed {r.Seed}, backing {r.Backing}, ran {r.RuntimeMs / 1000.0:0.0}s):");
        o.WriteLine("  op              count      ops/s    p50(us)    p99(us)");
        foreach (var s in r.Stats)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {OpName(s.Op),-13} {s.Count,8} {s.OpsPerSec,10:F1} {s.P50Us,10:F1} {s.P99Us,10:F1}"));
        if (r.Deadlocked)
        {
            o.WriteLine($"  DEADLOCK after {r.TimeToFirstDeadlockMs} ms (time to first deadlock):");
            foreach (var line in r.DeadlockReport) o.WriteLine("    " + line);
            o.WriteLine("  " + FixNote(r.Mode, r.Options.DirectWriters));
        }
        else
        {
            o.WriteLine("  deadlocks: 0");
        }
        if (r.TransientCycles.Count > 0)
        {
            o.WriteLine($"  transient cycles: {r.TransientCycleCount} (reported by the wait-for graph, then resolved: not deadlocks); the first:");
            foreach (var line in r.TransientCycles) o.WriteLine("    " + line);
        }
        o.WriteLine($"  hangs: {r.HungTasks.Count}{(r.HungTasks.Count > 0 ? " (" + string.Join(", ", r.HungTasks) + ")" : "")}");
        o.WriteLine($"  mismatches: {r.MismatchCount}; verified {r.VerifiedBytes} bytes ({r.TornBlocks} blocks torn between legal values by a read racing a write){(r.FinalCheckDone ? ", every file checked after sync" : "")}; {r.Snapshots} snapshots");
        foreach (var m in r.Mismatches.Take(20)) o.WriteLine("    MISMATCH " + m);
        if (r.IoErrors > 0) o.WriteLine($"  I/O ERRORS: {r.IoErrors} (first: {r.FirstIoError})");
        if (r.Failure is not null) o.WriteLine("  FAILED: " + r.Failure);
        o.WriteLine($"  replay: emu stress --mode {ReproCommand.ModeName(r.Mode)} --seed {r.Seed} --files {r.Options.Files} --file-size {SizeParser.Format(r.Options.FileSize)} --tasks {r.Options.Tasks}{(r.Options.DirectWriters > 0 ? $" --dio-writers {r.Options.DirectWriters}" : "")}" +
                    $"{(r.Options.Readers is { } rd ? $" --readers {rd} --writers {r.Options.Tasks - rd}" : "")}{(r.Options.Conflicts ? "" : " --no-conflicts")}{(r.Options.Syncer ? "" : " --no-sync")}{(r.Options.Snapshotter ? "" : " --no-snapshots")}{(r.Options.BlockSize is { } b ? $" --bs {SizeParser.Format(b)}" : "")}");
    }

    private static string OpName(StressOp op) => op switch
    {
        StressOp.BufferedWrite => "buffered-write",
        StressOp.DirectRead => "dio-read",
        StressOp.DirectWrite => "dio-write",
        StressOp.Sync => "sync",
        _ => "snapshot",
    };
}
