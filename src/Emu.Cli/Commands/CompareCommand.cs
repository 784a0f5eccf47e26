// `emu compare`: the two kernels side by side. Every run is a child emu process (`emu stress --json` or
// `emu repro --json`): an unpatched run that deadlocks leaves its tasks blocked for good, which no later run
// in the same process could survive. Bad input (options, job files, a non-empty --out) is refused before the
// first run; results.json and the plots are written only at the end.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Emu.Btrfs;
using Emu.Cli.Progress;
using Emu.Cli.Report;
using Emu.Workloads;
using Emu.Workloads.Compare;
using Emu.Workloads.Stress;

namespace Emu.Cli.Commands;

/// <summary>
/// `emu compare`: runs named workloads in both modes, each run in a child emu process (an unpatched run that
/// deadlocks leaves its tasks blocked for good), and reports throughput, latency, deadlocks and hangs of
/// v4.4 against v4.6 as tables, results.json and SVG plots.
/// </summary>
internal static class CompareCommand
{
    // A child that outlives its runtime by this much is stuck (stress stops itself at a deadlock or hang).
    private static readonly TimeSpan s_childGrace = TimeSpan.FromMinutes(2);

    public static Command Create()
    {
        var workloads = new Option<string?>("--workloads")
        {
            Description = "Comma-separated workloads to run: the built-in " + string.Join(", ", CompareWorkload.Builtins.Select(w => w.Name)) +
                          ", and the jobs of --job files (default: all built-ins, or only the jobs when --job is given).",
        };
        var job = new Option<string[]>("--job") { Description = "A fio-style job file ([global] defaults, one workload per [name] section; fio's keys rw, rwmixread, bs, size, filesize, nrfiles, numjobs, runtime, direct; emu's conflicts, sync, snapshots, dio_writers). May be repeated." };
        var repeat = new Option<int>("--repeat") { Description = "Runs per workload and mode.", DefaultValueFactory = _ => 3 };
        var runtime = new Option<string>("--runtime") { Description = "Run time of each stress run unless a job sets runtime (seconds, or 500ms, 1m); an unpatched run stops at its first deadlock.", DefaultValueFactory = _ => "5" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of the first run; run i of either mode uses seed + i (default: a new one, printed)." };
        var output = new Option<string?>("--out") { Description = "Folder for results.json and the plots (default: artifacts/compare/<UTC time>); must be empty or new unless --force." };
        var json = new Option<bool>("--json") { Description = "Print results.json on stdout instead of the tables (no progress)." };
        var quiet = new Option<bool>("--quiet") { Description = "No progress; only the tables." };
        var command = new Command("compare",
            "Run workloads in both modes (unpatched = v4.4 lock_extent_direct, patched = v4.6), --repeat times each in a child emu process, " +
            "and compare throughput per operation, latency p50/p99/p99.9, deadlocks, hangs and time to the first deadlock. Writes " +
            "results.json, ratio.svg and latency-<workload>.svg into --out. Exit 0, or 1 when a patched run deadlocked or hung or any run read wrong data " +
            "(unpatched deadlocks are what the comparison expects).")
        {
            workloads, job, repeat, runtime, seed, output, json, quiet,
        };
        WorkloadOptions.AddBacking(command, out var engine, out var backing, out var force);
        var trace = TraceFiles.AddOption(command);
        trace.Description += " Each run is a child process; their timelines are merged into FILE, one group of tracks per run (3-8 MB per second of stress).";
        force.Description = "Write into a non-empty --out (replacing the results and plots of an earlier compare), and format --backing even if it holds data Emu did not write or is mounted.";
        command.SetAction(p => Execute(new Request(p.GetValue(workloads), p.GetValue(job) ?? [], p.GetValue(repeat), p.GetValue(runtime)!, p.GetValue(seed),
            p.GetValue(output), p.GetValue(json), p.GetValue(quiet), p.GetValue(engine)!, p.GetValue(backing), p.GetValue(force), p.GetValue(trace))));
        return command;
    }

    private sealed record Request(string? Workloads, string[] Jobs, int Repeat, string Runtime, ulong? Seed, string? Out, bool Json, bool Quiet,
        string Engine, string? Backing, bool Force, string? Trace);

    private static int Execute(Request q)
    {
        if (q.Repeat < 1 || q.Repeat > 1000) throw new UsageException($"--repeat {q.Repeat} is out of range; use 1 to 1000");
        long runtimeMs = WorkloadOptions.ParseDuration(q.Runtime, "--runtime");
        WorkloadOptions.ParseBacking(q.Engine, q.Backing, q.Force);
        q = q with { Trace = TraceFiles.Validate(q.Trace) };
        IReadOnlyList<CompareWorkload> selected = Select(q);
        ulong seed = q.Seed ?? SeededSource.NewSeed();
        foreach (CompareWorkload w in selected.Where(w => w.Kind == CompareKind.Stress))
        {
            if (w.ToStressOptions(BtrfsMode.Patched, TimeSpan.FromMilliseconds(runtimeMs), seed).Validate() is { } problem)
                throw new UsageException($"workload {w.Name}: {problem}");
        }
        var started = DateTimeOffset.UtcNow;
        string outDir = Path.GetFullPath(q.Out ?? Path.Combine("artifacts", "compare", started.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)));
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any() && !q.Force)
            throw new UsageException($"--out {outDir} is not empty; name a new or empty folder, or add --force to replace its results");
        if (File.Exists(outDir)) throw new UsageException($"--out {outDir} is a file; name a folder");

        if (!q.Json)
        {
            Console.WriteLine($"emu compare: {string.Join(", ", selected.Select(w => w.Name))}; {q.Repeat} run{(q.Repeat == 1 ? "" : "s")} per mode, " +
                              $"stress runtime {runtimeMs / 1000.0:0.###}s{(selected.Any(w => w.Runtime is not null) ? " unless the job sets runtime" : "")}, seeds {seed}..{seed + (ulong)q.Repeat - 1} (replay with --seed {seed})");
            Console.Out.Flush();
        }
        var clock = Stopwatch.StartNew();
        int total = selected.Count * 2 * q.Repeat;
        var results = ProgressDisplay.For(q.Quiet || q.Json).Run("compare", total, "", step =>
        {
            var done = new List<WorkloadResult>();
            var traced = new List<(string Label, int Run)>();
            int finished = 0;
            foreach (CompareWorkload w in selected)
            {
                var runs = new Dictionary<BtrfsMode, List<CompareRun>> { [BtrfsMode.Unpatched] = [], [BtrfsMode.Patched] = [] };
                // The modes alternate run by run, so drift of the machine over time touches both alike.
                for (int i = 0; i < q.Repeat; i++)
                {
                    foreach (BtrfsMode mode in new[] { BtrfsMode.Unpatched, BtrfsMode.Patched })
                    {
                        step.Report(finished, $"{w.Name} {ReproCommand.ModeName(mode)} {i + 1}/{q.Repeat}");
                        traced.Add(($"{w.Name} {ReproCommand.ModeName(mode)} run {i + 1}", finished + 1));
                        runs[mode].Add(RunOne(w, mode, seed + (ulong)i, runtimeMs, q, finished + 1));
                        finished++;
                    }
                }
                done.Add(new WorkloadResult(w,
                    ModeResult.Summarize(BtrfsMode.Unpatched, w.Kind, runs[BtrfsMode.Unpatched]),
                    ModeResult.Summarize(BtrfsMode.Patched, w.Kind, runs[BtrfsMode.Patched])));
            }
            if (q.Trace is not null)
            {
                step.Report(finished, "merging the traces");
                TraceFiles.Merge(q.Trace, traced);
            }

            step.Report(finished, "done");
            return done;
        });

        var report = new CompareResults
        {
            EmuVersion = typeof(CompareCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown",
            Machine = Machine(),
            Started = started,
            WallMs = clock.ElapsedMilliseconds,
            Options = OptionList(q, selected, runtimeMs, seed),
            Workloads = results,
        };
        string resultsJson = Write(report, q.Repeat, outDir);
        if (q.Json)
        {
            Console.WriteLine(resultsJson);
        }
        else
        {
            CompareTable.Write(Console.Out, results, q.Repeat);
            Console.WriteLine($"wall time {clock.Elapsed.TotalSeconds:0.0}s; results.json and plots in {outDir}{(q.Trace is null ? "" : $"; timeline in {q.Trace}")}");
        }
        Console.Out.Flush();
        foreach (var r in results)
        {
            foreach (var m in new[] { r.Unpatched, r.Patched })
            {
                foreach (var failed in m.Runs.Where(x => x.Failure is not null))
                    Console.Error.WriteLine($"emu: warning: {r.Workload.Name} {ReproCommand.ModeName(m.Mode)} run (seed {failed.Seed?.ToString(CultureInfo.InvariantCulture) ?? "-"}) failed: {failed.Failure}");
            }
        }
        bool patchedProblem = results.Any(r => r.Patched.Deadlocks > 0 || r.Patched.Hangs > 0);
        bool badData = results.Any(r => r.Unpatched.Mismatches + r.Patched.Mismatches > 0);
        return patchedProblem || badData ? CommandRunner.ExitDetected : CommandRunner.ExitOk;
    }

    // The workloads to run, in the order named: built-ins and the jobs of every --job file.
    private static IReadOnlyList<CompareWorkload> Select(Request q)
    {
        var jobs = new List<CompareWorkload>();
        foreach (string path in q.Jobs)
        {
            try
            {
                jobs.AddRange(JobFile.Load(path));
            }
            catch (WorkloadUsageException e)
            {
                throw new UsageException(e.Message);
            }
        }
        foreach (var clash in jobs.GroupBy(j => j.Name).Where(g => g.Count() > 1 || CompareWorkload.Builtins.Any(b => b.Name == g.Key)))
            throw new UsageException($"job [{clash.Key}] of {clash.First().Source} has the name of {(clash.Count() > 1 ? "another job" : "a built-in workload")}; rename the section");
        var known = CompareWorkload.Builtins.Concat(jobs).ToList();
        if (q.Workloads is null) return q.Jobs.Length > 0 ? jobs : CompareWorkload.Builtins;
        var names = q.Workloads.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new UsageException("--workloads names no workload; use a comma-separated list such as repro,stress-conflict");
        var selected = new List<CompareWorkload>();
        foreach (string name in names.Distinct())
        {
            selected.Add(known.FirstOrDefault(w => w.Name == name)
                ?? throw new UsageException($"--workloads: no workload '{name}'; known: {string.Join(", ", known.Select(w => w.Name))}"));
        }
        return selected;
    }

    private static CompareRun RunOne(CompareWorkload w, BtrfsMode mode, ulong seed, long runtimeMs, Request q, int runNumber)
    {
        var args = new List<string>();
        TimeSpan timeout = s_childGrace;
        ulong? runSeed = null;
        if (w.Kind == CompareKind.Repro)
        {
            args.AddRange(["repro", "--mode", ReproCommand.ModeName(mode)]);
        }
        else
        {
            runSeed = seed;
            long ms = (long)(w.Runtime?.TotalMilliseconds ?? runtimeMs);
            timeout += TimeSpan.FromMilliseconds(ms);
            args.AddRange(["stress", "--mode", ReproCommand.ModeName(mode), "--runtime", $"{ms}ms", "--seed", seed.ToString(CultureInfo.InvariantCulture),
                "--files", Inv(w.Files), "--file-size", Inv(w.FileSize), "--tasks", Inv(w.Tasks), "--dio-writers", Inv(w.DirectWriters)]);
            if (w.Readers is { } readers) args.AddRange(["--readers", Inv(readers), "--writers", Inv(w.Tasks - readers)]);
            if (!w.Conflicts) args.Add("--no-conflicts");
            if (!w.Syncer) args.Add("--no-sync");
            if (!w.Snapshotter) args.Add("--no-snapshots");
            if (w.BlockSize is { } bs) args.AddRange(["--bs", Inv(bs)]);
        }
        args.AddRange(["--engine", q.Engine, "--json"]);
        if (q.Backing is not null) args.AddRange(["--backing", q.Backing]);
        if (q.Force) args.Add("--force");
        if (q.Trace is not null) args.AddRange(TraceFiles.ChildArgs(q.Trace, runNumber));
        try
        {
            var (code, result) = ChildRun.Json(args, timeout);
            string? failure = result.TryGetProperty("failure", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            return new CompareRun(runSeed, code, result, failure);
        }
        catch (InvalidOperationException e)
        {
            return new CompareRun(runSeed, -1, null, e.Message);
        }
    }

    private static string Write(CompareResults report, int repeat, string outDir)
    {
        string json = JsonText.Of(report.WriteJson);
        Directory.CreateDirectory(outDir);
        // Plots of an earlier compare into the same folder (--force) would pass for this one's.
        foreach (string stale in Directory.EnumerateFiles(outDir, "latency-*.svg"))
            File.Delete(stale);
        File.WriteAllText(Path.Combine(outDir, "results.json"), json + "\n");
        File.WriteAllText(Path.Combine(outDir, "ratio.svg"), SvgChart.RatioBars(report.Workloads, repeat));
        foreach (var r in report.Workloads.Where(r => r.OpNames.Any()))
            File.WriteAllText(Path.Combine(outDir, $"latency-{r.Workload.Name}.svg"), SvgChart.LatencyCdf(r));
        return json;
    }

    private static CompareMachine Machine()
    {
        try
        {
            var t = TopologyCommand.ReadTopology();
            return new CompareMachine(t.ModelName, t.LogicalCpus, t.NumaNodes.Length);
        }
        catch (UsageException)
        {
            return new CompareMachine("unknown", Environment.ProcessorCount, 1);
        }
    }

    private static List<KeyValuePair<string, object>> OptionList(Request q, IReadOnlyList<CompareWorkload> selected, long runtimeMs, ulong seed) =>
    [
        new("workloads", selected.Select(w => w.Name).ToArray()),
        new("jobs", q.Jobs),
        new("repeat", (long)q.Repeat),
        new("runtimeMs", runtimeMs),
        new("seed", seed),
        new("engine", q.Engine),
        new("backing", q.Backing ?? "default"),
    ];

    private static string Inv(long v) => v.ToString(CultureInfo.InvariantCulture);
}
