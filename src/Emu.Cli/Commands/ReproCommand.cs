using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Emu.Btrfs;
using Emu.Cli.Progress;
using Emu.Cli.Diagnostics;
using Emu.Workloads;
using Emu.Workloads.Backing;
using Emu.Workloads.Repro;

namespace Emu.Cli.Commands;

/// <summary>`emu repro`: drives the deadlock of ade770294df2 step by step (unpatched) and shows the fix (patched).</summary>
internal static class ReproCommand
{
    private const string FixText =
        "ade770294df2 \"Btrfs: fix deadlock between direct IO reads and buffered writes\" (Linux 4.6): lock_extent_direct() " +
        "returns -ENOTBLK when a direct-IO read meets the ordered extent of a buffered write, instead of starting it and " +
        "waiting while earlier blocks of the read stay locked; the read submits what it mapped (unlocking [0, 4K)) and " +
        "reads the rest through the page cache.";

    public static Command Create()
    {
        var mode = new Option<string>("--mode")
        {
            Description = "unpatched (v4.4: deadlocks, exit 1), patched (v4.6: completes and verifies the data, exit 0), " +
                          "or both: unpatched then patched, each in a child emu process; exit 0 when unpatched deadlocked and " +
                          "patched completed with verified data (the kernel's behaviour reproduced), else 1.",
            DefaultValueFactory = _ => "unpatched",
        };
        var hung = new Option<string>("--hung-task-timeout")
        {
            Description = "khungtaskd's hung_task_timeout (seconds, or with a unit: 1, 1s, 500ms).",
            DefaultValueFactory = _ => "1",
        };
        var repeat = new Option<int>("--repeat") { Description = "Run it N times (each in a child process) and report counts.", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the kernel log and a summary." };
        var dumpOnHang = new Option<string?>("--dump-on-hang") { Description = "Once the deadlock is reported, write a dump of this process (managed heap included) to this file; read it with emu diagnose --stacks. One in-process run only (no --mode both, no --repeat)." };
        var command = new Command("repro",
            "Reproduce the btrfs DIO-read vs buffered-write deadlock (fixed in Linux 4.6 by ade770294df2) with scripted " +
            "pause points: a writeback pass leaves the ordered extent [4K,12K) with page 2 still dirty, the O_DIRECT read of [0,12K) " +
            "holds [0,4K), the buffered write of [0,12K) holds its pages, plus the seed's victims (snapshot, sync, flush_delalloc " +
            "and writeback workers).")
        {
            mode, hung, repeat, json,
        };
        WorkloadOptions.AddBacking(command, out var engine, out var backing, out var force);
        var trace = TraceFiles.AddOption(command);
        command.Options.Add(dumpOnHang);
        command.SetAction(p => Execute(p.GetValue(mode)!, p.GetValue(hung)!, p.GetValue(repeat), p.GetValue(json),
            p.GetValue(engine)!, p.GetValue(backing), p.GetValue(force), p.GetValue(trace), p.GetValue(dumpOnHang)));
        return command;
    }

    private static int Execute(string modeText, string hungText, int repeat, bool json, string engineText, string? backing, bool force, string? tracePath, string? dumpOnHangPath)
    {
        var modes = modeText switch
        {
            "unpatched" => new[] { BtrfsMode.Unpatched },
            "patched" => new[] { BtrfsMode.Patched },
            "both" => new[] { BtrfsMode.Unpatched, BtrfsMode.Patched },
            _ => throw new UsageException($"--mode '{modeText}' is not a mode; use unpatched, patched or both"),
        };
        long hungMs = WorkloadOptions.ParseDuration(hungText, "--hung-task-timeout");
        if (hungMs < 10) throw new UsageException($"--hung-task-timeout {hungText} is too short; use at least 10ms");
        if (repeat < 1 || repeat > 10_000) throw new UsageException($"--repeat {repeat} is out of range; use 1 to 10000");
        var backingOptions = WorkloadOptions.ParseBacking(engineText, backing, force);
        string? traceFile = TraceFiles.Validate(tracePath);
        if (dumpOnHangPath is not null && (modes.Length != 1 || repeat != 1))
            throw new UsageException("--dump-on-hang dumps one in-process run; drop --mode both and --repeat");
        string? dumpFile = dumpOnHangPath is null ? null : DumpWriter.CheckPath(dumpOnHangPath, force: false, "--dump-on-hang");

        if (modes.Length == 1 && repeat == 1)
            return RunInProcess(modes[0], hungMs, backingOptions, json, traceFile, dumpFile);

        // Several runs: each in a child process, so one run's deadlocked tasks (and its hung sync(2), which would
        // block every later sync in this process) cannot touch the next.
        var childArgs = new List<string> { "--hung-task-timeout", $"{hungMs}ms", "--engine", engineText, "--json" };
        if (backing is not null) childArgs.AddRange(["--backing", backing]);
        if (force) childArgs.Add("--force");
        var runs = new List<(BtrfsMode Mode, JsonElement Result)>();
        ProgressDisplay.For(json || repeat == 1).Run("repro", modes.Length * repeat, "", step =>
        {
            foreach (var m in modes)
            {
                for (int i = 0; i < repeat; i++)
                {
                    step.Report(runs.Count, $"{ModeName(m)} {i + 1}/{repeat}");
                    var result = ChildRun.Repro(m, traceFile is null ? childArgs : [.. childArgs, .. TraceFiles.ChildArgs(traceFile, runs.Count + 1)]);
                    runs.Add((m, result));
                }
            }
            step.Report(runs.Count, "done");
        });
        if (traceFile is not null)
            TraceFiles.Merge(traceFile, runs.Select((r, i) => ($"{ModeName(r.Mode)} run {runs.Take(i).Count(x => x.Mode == r.Mode) + 1}", i + 1)).ToList());

        bool ok = modes.All(m => runs.Where(r => r.Mode == m).All(r => r.Result.GetProperty("reproduced").GetBoolean()));
        if (json) WriteRunsJson(modes, repeat, runs, ok);
        else WriteRunsText(modes, repeat, runs, ok);
        if (modes.Length == 2) return ok ? CommandRunner.ExitOk : CommandRunner.ExitDetected;
        bool anyDeadlock = runs.Any(r => r.Result.GetProperty("deadlocked").GetBoolean());
        bool anyMismatch = runs.Any(r => r.Result.GetProperty("mismatches").GetArrayLength() > 0);
        bool anyFailure = runs.Any(r => r.Result.GetProperty("failure").ValueKind != JsonValueKind.Null);
        return anyDeadlock || anyMismatch ? CommandRunner.ExitDetected : anyFailure ? CommandRunner.ExitInternal : CommandRunner.ExitOk;
    }

    private static int RunInProcess(BtrfsMode mode, long hungMs, BackingOptions backing, bool json, string? traceFile, string? dumpFile)
    {
        if (!json)
        {
            Console.WriteLine($"emu repro: {ModeName(mode)} ({(mode == BtrfsMode.Unpatched ? "v4.4" : "v4.6")} lock_extent_direct), hung_task_timeout {hungMs} ms");
            Console.Out.Flush();
        }
        using var trace = TraceFiles.Start(traceFile, $"emu repro {ModeName(mode)}", ("mode", ModeName(mode)));
        ReproResult result;
        try
        {
            result = ReproScenario.Run(new ReproOptions
            {
                Mode = mode,
                HungTaskTimeoutMs = hungMs,
                Backing = backing,
                Console = json ? null : Console.Out,
                OnHang = DumpWriter.OnHang(dumpFile),
            });
        }
        catch (WorkloadUsageException e)
        {
            throw new UsageException(e.Message);
        }
        trace?.Write();

        WorkloadOptions.WarnIfFellBack(backing, result.Engine);
        if (json)
        {
            Console.WriteLine(JsonText.Of(result.WriteJson));
        }
        else
        {
            WriteSummary(Console.Out, result);
        }
        Console.Out.Flush();
        if (result.Failure is not null) return CommandRunner.ExitInternal;
        return result.Deadlocked || result.Mismatches.Count > 0 ? CommandRunner.ExitDetected : CommandRunner.ExitOk;
    }

    internal static void WriteSummary(TextWriter o, ReproResult r)
    {
        o.WriteLine();
        o.WriteLine($"Summary ({ModeName(r.Mode)}, backing {r.Backing}):");
        if (r.Failure is not null)
        {
            o.WriteLine($"  the scenario could not be driven: {r.Failure}");
            return;
        }
        if (r.Deadlocked)
        {
            var reader = r.Cycle.FirstOrDefault(e => e.Task.Role == ReproRoles.DioReader);
            var writer = r.Cycle.FirstOrDefault(e => e.Task.Role == ReproRoles.BufferedWriter);
            if (reader is not null && writer is not null)
                o.WriteLine($"  DEADLOCK: the O_DIRECT read {Name(reader.Task)} waits for {reader.Resource} held by the buffered write {Name(writer.Task)}, " +
                            $"which waits for {writer.Resource} held by the read.");
            else
                o.WriteLine("  DEADLOCK: " + string.Join("; ", r.Cycle.Select(e => $"{Name(e.Task)} waits for {e.Resource} held by {Name(e.Holder)}")));
            foreach (var v in r.Victims)
                o.WriteLine($"  blocked behind it: {Name(v.Task)} ({v.Task.Role}) waits for {v.Resource} " +
                            $"{(v.Resource.StartsWith("completion ", StringComparison.Ordinal) ? "to be completed by" : "held by")} {Name(v.Holder)}");
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  time from start to cycle: {r.TimeToCycleMs} ms (reported {r.DetectionLatencyMs} ms after the read met the ordered extent)"));
            int matching = r.HungTasks.Count(h => h.MissingSeedFrames.Count == 0);
            o.WriteLine($"  hung-task reports: {r.HungTasks.Count} of {ReproRoles.SeedFrames.Count} seed tasks" +
                        (r.TimeToReportsMs is { } t ? $", all within {t} ms of the start" : "") +
                        $"; {matching} with the seed's call trace");
            foreach (var h in r.HungTasks.Where(h => h.MissingSeedFrames.Count > 0))
                o.WriteLine($"    {Name(h.Task)} ({h.Task.Role}) lacks the seed frames {string.Join(", ", h.MissingSeedFrames)}");
            o.WriteLine("  the fix that would have avoided it: " + FixText);
            o.WriteLine("  run `emu repro --mode patched` to see the same interleaving complete.");
        }
        else if (r.Completed)
        {
            o.WriteLine($"  no deadlock: every task finished; the O_DIRECT read returned {r.ReadBytes} bytes.");
            o.WriteLine(r.Mismatches.Count == 0
                ? $"  data verified: {r.VerifiedBytes} bytes (the read, then the file on disk and in the page cache after sync) match what the writes left."
                : $"  DATA MISMATCH ({r.Mismatches.Count}):");
            foreach (var m in r.Mismatches) o.WriteLine("    " + m);
        }
    }

    private static void WriteRunsText(BtrfsMode[] modes, int repeat, List<(BtrfsMode Mode, JsonElement Result)> runs, bool ok)
    {
        if (repeat == 1)
        {
            foreach (var (mode, r) in runs)
            {
                Console.WriteLine($"=== {ModeName(mode)} ===");
                foreach (var line in r.GetProperty("kernelLog").EnumerateArray()) Console.WriteLine(line.GetString());
                Console.WriteLine();
                Console.WriteLine(RunLine(mode, r));
            }
        }
        else
        {
            foreach (var mode in modes)
            {
                var mine = runs.Where(x => x.Mode == mode).Select(x => x.Result).ToList();
                int reproduced = mine.Count(r => r.GetProperty("reproduced").GetBoolean());
                if (mode == BtrfsMode.Unpatched)
                {
                    int dead = mine.Count(r => r.GetProperty("deadlocked").GetBoolean());
                    var cycle = Stats(mine, "timeToCycleMs");
                    var reports = Stats(mine, "timeToReportsMs");
                    Console.WriteLine($"unpatched: {dead}/{repeat} deadlocked, {reproduced}/{repeat} with the seed's cycle and all six seed traces; " +
                                      $"time to cycle {cycle}, time to all hung-task reports {reports}");
                }
                else
                {
                    int done = mine.Count(r => r.GetProperty("completed").GetBoolean());
                    long bytes = mine.Sum(r => r.GetProperty("verifiedBytes").GetInt64());
                    Console.WriteLine($"patched: {done}/{repeat} completed, {reproduced}/{repeat} with verified data ({bytes} bytes verified in all)");
                }
                foreach (var r in mine.Where(r => !r.GetProperty("reproduced").GetBoolean()))
                    Console.WriteLine("  " + RunLine(mode, r));
            }
        }
        if (modes.Length == 2)
            Console.WriteLine(ok
                ? "reproduced: unpatched deadlocks, patched completes with verified data (the kernel's behaviour before and after ade770294df2)."
                : "NOT reproduced: see the runs above.");
    }

    private static string RunLine(BtrfsMode mode, JsonElement r)
    {
        if (r.GetProperty("failure").GetString() is { } failure) return $"{ModeName(mode)}: scenario failed: {failure}";
        if (r.GetProperty("deadlocked").GetBoolean())
        {
            var cycle = string.Join("; ", r.GetProperty("cycle").EnumerateArray().Select(e =>
                $"{e.GetProperty("task").GetProperty("comm").GetString()}:{e.GetProperty("task").GetProperty("pid").GetInt32()} ({e.GetProperty("task").GetProperty("role").GetString()}) waits for {e.GetProperty("resource").GetString()}"));
            return $"{ModeName(mode)}: DEADLOCK after {r.GetProperty("timeToCycleMs")} ms: {cycle}; {r.GetProperty("hungTasks").GetArrayLength()} hung-task reports" +
                   (r.GetProperty("reproduced").GetBoolean() ? " (the seed's cycle and traces)" : " (NOT the seed's cycle and traces)");
        }
        var mismatches = r.GetProperty("mismatches");
        return mismatches.GetArrayLength() == 0
            ? $"{ModeName(mode)}: completed, {r.GetProperty("readBytes")} bytes read, {r.GetProperty("verifiedBytes")} bytes verified"
            : $"{ModeName(mode)}: completed with {mismatches.GetArrayLength()} mismatches: {string.Join("; ", mismatches.EnumerateArray().Select(m => m.GetString()))}";
    }

    private static string Stats(List<JsonElement> runs, string field)
    {
        var values = runs.Select(r => r.GetProperty(field)).Where(v => v.ValueKind == JsonValueKind.Number).Select(v => v.GetInt64()).Order().ToList();
        if (values.Count == 0) return "n/a";
        return $"min {values[0]} / median {values[values.Count / 2]} / max {values[^1]} ms";
    }

    private static void WriteRunsJson(BtrfsMode[] modes, int repeat, List<(BtrfsMode Mode, JsonElement Result)> runs, bool ok)
    {
        Console.WriteLine(JsonText.Of(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("modes");
            foreach (var m in modes) w.WriteStringValue(ModeName(m));
            w.WriteEndArray();
            w.WriteNumber("repeat", repeat);
            w.WriteBoolean("reproduced", ok);
            foreach (var m in modes)
            {
                var mine = runs.Where(x => x.Mode == m).Select(x => x.Result).ToList();
                w.WriteStartObject(ModeName(m));
                w.WriteNumber("runs", mine.Count);
                w.WriteNumber("deadlocked", mine.Count(r => r.GetProperty("deadlocked").GetBoolean()));
                w.WriteNumber("completed", mine.Count(r => r.GetProperty("completed").GetBoolean()));
                w.WriteNumber("reproduced", mine.Count(r => r.GetProperty("reproduced").GetBoolean()));
                w.WriteStartArray("results");
                foreach (var r in mine) r.WriteTo(w);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }));
    }

    private static string Name(ReproTask t) => $"{t.Comm}:{t.Pid}";

    internal static string ModeName(BtrfsMode mode) => mode == BtrfsMode.Unpatched ? "unpatched" : "patched";
}

/// <summary>Option parsing shared by `emu repro` and `emu stress`.</summary>
internal static class WorkloadOptions
{
    public static void AddBacking(Command command, out Option<string> engine, out Option<string?> backing, out Option<bool> force)
    {
        engine = new Option<string>("--engine") { Description = "io_uring (default; psync with a warning where io_uring is unavailable), psync, or mem (a RAM disk: no backing file).", DefaultValueFactory = _ => "io_uring" };
        backing = new Option<string?>("--backing")
        {
            Description = "File or block device to hold the filesystem (formatted!). Default: backing.img in $EMU_DATA_DIR, else $XDG_DATA_HOME/emu, " +
                          "else ~/.local/share/emu (./.emu-data when that is tmpfs). A path holding another filesystem, a partition table, " +
                          "data Emu did not write, or that is mounted, is refused without --force.",
        };
        force = new Option<bool>("--force") { Description = "Format --backing even if it holds data Emu did not write or is mounted." };
        command.Options.Add(engine);
        command.Options.Add(backing);
        command.Options.Add(force);
    }

    public static BackingOptions ParseBacking(string engine, string? backing, bool force)
    {
        var e = engine switch
        {
            "io_uring" => BackingEngine.IoUring,
            "psync" => BackingEngine.Psync,
            "mem" => BackingEngine.Mem,
            _ => throw new UsageException($"--engine '{engine}' is not an engine Emu has; use io_uring, psync or mem"),
        };
        if (e == BackingEngine.Mem && backing is not null)
            throw new UsageException("--backing names a file or device, but --engine mem runs in RAM without one; drop one of them");
        return new BackingOptions { Engine = e, Path = backing, Force = force };
    }

    /// <summary>The io_uring engine falls back to psync where io_uring is unavailable: say so once, on stderr.</summary>
    public static void WarnIfFellBack(BackingOptions asked, string engine)
    {
        if (asked.Engine == BackingEngine.IoUring && engine != "io_uring")
            Console.Error.WriteLine($"emu: warning: io_uring is unavailable here; using the {engine} engine");
    }

    /// <summary>A duration in ms: plain numbers are seconds; units ms, s, m, h.</summary>
    public static long ParseDuration(string text, string option)
    {
        var s = text.Trim().ToLowerInvariant();
        double scale = 1000;
        if (s.EndsWith("ms")) { scale = 1; s = s[..^2]; }
        else if (s.EndsWith('s')) s = s[..^1];
        else if (s.EndsWith('m')) { scale = 60_000; s = s[..^1]; }
        else if (s.EndsWith('h')) { scale = 3_600_000; s = s[..^1]; }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v <= 0 || double.IsInfinity(v) || v * scale > int.MaxValue)
            throw new UsageException($"{option} '{text}' is not a duration; use seconds such as 1, 1s, 500ms or 1m");
        return (long)Math.Round(v * scale);
    }
}
