using System.Text.Json;
using System.Xml.Linq;
using Emu.Btrfs;
using Emu.Cli.Report;
using Emu.Workloads.Compare;

namespace Emu.Cli.Tests;

/// <summary>`emu compare`: the results.json schema of a real (tiny) compare, its plots, and refusals of bad input before anything runs.</summary>
[TestFixture]
[NonParallelizable]
public sealed class CompareTests
{
    private static readonly XNamespace s_svg = "http://www.w3.org/2000/svg";

    [Test]
    public void TinyCompare_WritesResultsJsonWithTheSchema_AndPrintsIt()
    {
        string dir = FreshDir("tiny");

        var r = CliHarness.Run("compare", "--workloads", "stress-conflict", "--repeat", "1", "--runtime", "1s", "--seed", "5",
            "--engine", "mem", "--out", dir, "--json");

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stdout + r.Stderr);
        string file = File.ReadAllText(Path.Combine(dir, "results.json"));
        Assert.That(r.Stdout.Trim(), Is.EqualTo(file.Trim()), "--json prints results.json");
        using var doc = JsonDocument.Parse(file);
        var root = doc.RootElement;
        Assert.That(root.GetProperty("version").GetInt32(), Is.EqualTo(CompareResults.SchemaVersion));
        Assert.That(root.GetProperty("emuVersion").GetString(), Is.Not.Empty);
        Assert.That(root.GetProperty("machine").GetProperty("cpus").GetInt32(), Is.GreaterThan(0));
        Assert.That(root.GetProperty("machine").GetProperty("nodes").GetInt32(), Is.GreaterThan(0));
        Assert.That(root.GetProperty("machine").GetProperty("cpuModel").GetString(), Is.Not.Null);
        Assert.That(DateTimeOffset.TryParse(root.GetProperty("started").GetString(), out _), Is.True);
        Assert.That(root.GetProperty("options").GetProperty("repeat").GetInt32(), Is.EqualTo(1));
        Assert.That(root.GetProperty("options").GetProperty("seed").GetUInt64(), Is.EqualTo(5));
        Assert.That(root.GetProperty("options").GetProperty("workloads")[0].GetString(), Is.EqualTo("stress-conflict"));

        var workload = root.GetProperty("workloads").EnumerateArray().Single();
        Assert.That(workload.GetProperty("name").GetString(), Is.EqualTo("stress-conflict"));
        Assert.That(workload.GetProperty("source").GetString(), Is.EqualTo("builtin"));
        foreach (string mode in new[] { "unpatched", "patched" })
        {
            var m = workload.GetProperty("modes").GetProperty(mode);
            var run = m.GetProperty("runs").EnumerateArray().Single();
            Assert.That(run.GetProperty("seed").GetUInt64(), Is.EqualTo(5));
            Assert.That(run.GetProperty("result").GetProperty("mode").GetString(), Is.EqualTo(mode));
            var summary = m.GetProperty("summary");
            Assert.That(summary.GetProperty("runs").GetInt32(), Is.EqualTo(1));
            Assert.That(summary.GetProperty("deadlocks").GetInt32(), Is.InRange(0, 1));
            Assert.That(summary.GetProperty("hangs").GetInt32(), Is.InRange(0, 1));
            var ttfd = summary.GetProperty("timeToFirstDeadlockMs");
            Assert.That(ttfd.ValueKind, Is.EqualTo(summary.GetProperty("deadlocks").GetInt32() > 0 ? JsonValueKind.Object : JsonValueKind.Null));
            var write = summary.GetProperty("ops").GetProperty("bufferedWrite");
            var throughput = write.GetProperty("throughput");
            Assert.That(throughput.GetProperty("unit").GetString(), Is.EqualTo("ops/s"));
            Assert.That(throughput.GetProperty("min").GetDouble(), Is.LessThanOrEqualTo(throughput.GetProperty("median").GetDouble()));
            Assert.That(throughput.GetProperty("median").GetDouble(), Is.LessThanOrEqualTo(throughput.GetProperty("max").GetDouble()));
            var latency = write.GetProperty("latency");
            Assert.That(latency.GetProperty("p50").GetDouble(), Is.LessThanOrEqualTo(latency.GetProperty("p99").GetDouble()));
            Assert.That(latency.GetProperty("p99").GetDouble(), Is.LessThanOrEqualTo(latency.GetProperty("p999").GetDouble()));
            var histogram = latency.GetProperty("histogram");
            Assert.That(histogram.GetProperty("upperNs").GetArrayLength(), Is.EqualTo(histogram.GetProperty("counts").GetArrayLength()));
            // A deadlocked run counts operations up to the deadlock; its histograms also hold the few done after it.
            long timed = histogram.GetProperty("counts").EnumerateArray().Sum(c => c.GetInt64());
            long count = run.GetProperty("result").GetProperty("ops").GetProperty("bufferedWrite").GetProperty("count").GetInt64();
            Assert.That(timed, run.GetProperty("result").GetProperty("deadlocked").GetBoolean() ? Is.GreaterThanOrEqualTo(count) : Is.EqualTo(count));
        }
        var ratio = workload.GetProperty("ratios").GetProperty("bufferedWrite");
        Assert.That(ratio.ValueKind, Is.AnyOf(JsonValueKind.Number, JsonValueKind.Null));

        foreach (string svg in new[] { "ratio.svg", "latency-stress-conflict.svg" })
            Assert.That(XDocument.Load(Path.Combine(dir, svg)).Root!.Name, Is.EqualTo(s_svg + "svg"), svg);
    }

    [Test]
    public void Trace_MergesEveryChildRunIntoOneTimeline_OneGroupOfTracksPerRun()
    {
        string dir = FreshDir("trace");
        string trace = Path.Combine(CliHarness.ScratchDir(nameof(CompareTests)), "compare-trace.json");
        File.Delete(trace);

        var r = CliHarness.Run("compare", "--workloads", "stress-disjoint", "--repeat", "1", "--runtime", "300ms", "--engine", "mem",
            "--out", dir, "--quiet", "--trace", trace);

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stdout + r.Stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(trace));
        var runs = doc.RootElement.GetProperty("otherData").GetProperty("runs").EnumerateArray().ToList();
        Assert.That(runs.Select(x => x.GetProperty("label").GetString()),
            Is.EqualTo(new[] { "stress-disjoint unpatched run 1", "stress-disjoint patched run 1" }));
        Assert.That(runs.Any(x => x.TryGetProperty("missing", out _)), Is.False, "every child wrote its part");
        var processNames = doc.RootElement.GetProperty("traceEvents").EnumerateArray()
            .Where(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "process_name")
            .Select(e => e.GetProperty("args").GetProperty("name").GetString()).ToList();
        Assert.That(processNames, Has.Some.StartsWith("stress-disjoint unpatched run 1"));
        Assert.That(processNames, Has.Some.StartsWith("stress-disjoint patched run 1"));
        Assert.That(Directory.EnumerateFiles(Path.GetDirectoryName(trace)!, "compare-trace.json.run*"), Is.Empty, "the parts are deleted");
    }

    [Test]
    public void TextOutput_Redirected_ShowsProgressAsPlainLines_AndTheTables()
    {
        string dir = FreshDir("text");

        var r = CliHarness.Run("compare", "--workloads", "stress-disjoint", "--repeat", "1", "--runtime", "500ms", "--engine", "mem", "--out", dir);

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stdout + r.Stderr);
        Assert.That(r.Stdout, Does.Contain("compare [0/2] stress-disjoint unpatched 1/1"));
        Assert.That(r.Stdout, Does.Contain("compare [2/2] done"));
        Assert.That(r.Stdout, Does.Contain("patched/unpatched"));
        Assert.That(r.Stdout, Does.Contain("directRead"));
        Assert.That(r.Stdout, Does.Not.Contain("\u001b["), "no escape sequences when redirected");
    }

    [Test]
    public void Quiet_PrintsNoProgress()
    {
        string dir = FreshDir("quiet");

        var r = CliHarness.Run("compare", "--workloads", "stress-disjoint", "--repeat", "1", "--runtime", "300ms", "--engine", "mem", "--out", dir, "--quiet");

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stdout + r.Stderr);
        Assert.That(r.Stdout, Does.Not.Contain("compare ["));
        Assert.That(r.Stdout, Does.Contain("patched/unpatched"));
    }

    [Test]
    public void StressDisjoint_Unpatched_ReadersNeverMeetAWrite()
    {
        // stress-disjoint's mix: each task owns a slice of every file, so no O_DIRECT read overlaps a write
        // (no torn blocks) and v4.4's lock_extent_direct never meets a writer's ordered extent (no deadlock).
        var (code, stdout, stderr) = Emu.Cli.Commands.ChildRun.Run(["stress", "--mode", "unpatched", "--no-conflicts", "--readers", "2", "--writers", "2",
            "--file-size", "256k", "--engine", "mem", "--runtime", "2", "--seed", "7", "--json"]);

        Assert.That(code, Is.EqualTo(0), stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.That(root.GetProperty("deadlocked").GetBoolean(), Is.False);
        Assert.That(root.GetProperty("tornBlocks").GetInt64(), Is.Zero);
        Assert.That(root.GetProperty("conflicts").GetBoolean(), Is.False);
        Assert.That(root.GetProperty("readers").GetInt32(), Is.EqualTo(2));
        Assert.That(root.GetProperty("ops").GetProperty("directRead").GetProperty("count").GetInt64(), Is.GreaterThan(0));
        Assert.That(root.GetProperty("finalCheckDone").GetBoolean(), Is.True);
    }

    [TestCase("[mixed]\nrw=randrw\nblocksize2=4k\n", ":3: unknown key 'blocksize2' in [mixed]")]
    [TestCase("[mixed]\nbs=12q\n", ":2: bad size '12q' for 'bs'")]
    [TestCase("rw=randrw\n", ":1: key 'rw' outside any [section]")]
    [TestCase("[global]\nnumjobs=2\n", ": no job sections")]
    public void BadJobFile_IsOneLineNamingFileAndLine_Exit2_NothingWritten(string text, string expected)
    {
        string scratch = CliHarness.ScratchDir(nameof(CompareTests));
        string job = Path.Combine(scratch, "bad.fio");
        File.WriteAllText(job, text);
        string dir = Path.Combine(scratch, "bad-out-" + Guid.NewGuid().ToString("N"));

        var r = CliHarness.Run("compare", "--job", job, "--engine", "mem", "--out", dir);

        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.StartWith("emu: " + job + expected));
        Assert.That(r.Stdout, Is.Empty);
        Assert.That(Directory.Exists(dir), Is.False);
    }

    [Test]
    public void NonEmptyOut_IsRefusedBeforeRunning()
    {
        string dir = FreshDir("full");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "keep.txt"), "mine");

        var r = CliHarness.Run("compare", "--workloads", "repro", "--engine", "mem", "--out", dir);

        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("--force"));
        Assert.That(Directory.GetFileSystemEntries(dir), Has.Length.EqualTo(1));
    }

    [Test]
    public void NonEmptyOut_WithForce_ReplacesTheEarlierResults_AndKeepsOtherFiles()
    {
        string dir = FreshDir("force");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "keep.txt"), "mine");
        File.WriteAllText(Path.Combine(dir, "latency-gone.svg"), "<svg/>");

        var r = CliHarness.Run("compare", "--workloads", "stress-disjoint", "--repeat", "1", "--runtime", "300ms", "--engine", "mem", "--out", dir, "--force", "--quiet");

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stdout + r.Stderr);
        Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "keep.txt", "latency-stress-disjoint.svg", "ratio.svg", "results.json" }));
    }

    [Test]
    public void UnknownWorkload_IsAUsageErrorListingTheKnownOnes()
    {
        var r = CliHarness.Run("compare", "--workloads", "repro,nope", "--engine", "mem");

        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("no workload 'nope'").And.Contain("stress-conflict"));
    }

    [Test]
    public void RatioChart_IsSvgWithAxesLabelsLegendAndOneBarPerOp()
    {
        var result = Synthetic();

        var svg = XDocument.Parse(SvgChart.RatioBars([result], 3));

        var texts = svg.Descendants(s_svg + "text").Select(t => t.Value).ToList();
        Assert.That(svg.Root!.Name, Is.EqualTo(s_svg + "svg"));
        Assert.That(texts, Does.Contain("workload").And.Contain("patched / unpatched ops/s").And.Contain("legend"));
        Assert.That(texts, Does.Contain("bufferedWrite").And.Contain("directRead").And.Contain("synthetic").And.Contain("1 = same throughput"));
        Assert.That(texts, Does.Contain("2.00"), "bufferedWrite: 200 ops/s patched over 100 unpatched");
        Assert.That(svg.Descendants(s_svg + "rect").Count(r => r.Element(s_svg + "title") is not null), Is.EqualTo(2));
    }

    [Test]
    public void SnapshotRate_IsPacedByTheWorkload_SoItHasNoRatio()
    {
        var result = Synthetic("bufferedWrite", "snapshot");

        Assert.That(result.Ratio("bufferedWrite"), Is.EqualTo(2.0));
        Assert.That(result.Ratio("snapshot"), Is.Null);
        var texts = XDocument.Parse(SvgChart.RatioBars([result], 3)).Descendants(s_svg + "text").Select(t => t.Value).ToList();
        Assert.That(texts, Does.Contain("paced"));
    }

    [Test]
    public void LatencyCdf_IsSvgWithALogTimeAxis_AndOneLinePerOpAndMode()
    {
        var svg = XDocument.Parse(SvgChart.LatencyCdf(Synthetic()));

        var texts = svg.Descendants(s_svg + "text").Select(t => t.Value).ToList();
        Assert.That(texts, Does.Contain("latency (log scale)").And.Contain("fraction of operations at or below"));
        Assert.That(texts, Does.Contain("10 µs").And.Contain("100 µs").And.Contain("1 ms"));
        Assert.That(texts, Does.Contain("directRead, unpatched").And.Contain("directRead, patched"));
        Assert.That(svg.Descendants(s_svg + "polyline").Count(), Is.EqualTo(4));
    }

    [Test]
    public void LatencyBuckets_KeepEveryCount_WithinAnEighthOfTheValue_AndMergeBySumming()
    {
        var histogram = new Emu.Kernel.Stats.LatencyHistogram();
        long[] values = [3, 900, 1_000, 25_000, 25_100, 4_000_000];
        foreach (long v in values) histogram.Record(v);

        var buckets = Emu.Workloads.Stress.LatencyBuckets.Of(histogram);
        var merged = Emu.Workloads.Stress.LatencyBuckets.Merge([buckets, buckets]);

        Assert.That(buckets.Total, Is.EqualTo(values.Length));
        Assert.That(buckets.UpperNs, Is.Ordered.Ascending.And.Unique);
        foreach (long v in values)
        {
            long edge = buckets.UpperNs.First(e => e >= v);
            Assert.That(edge - v, Is.LessThanOrEqualTo(v / 8), $"{v} ns lands in the bucket ending at {edge} ns");
        }
        Assert.That(merged.UpperNs, Is.EqualTo(buckets.UpperNs));
        Assert.That(merged.Counts, Is.EqualTo(buckets.Counts.Select(c => 2 * c)));
        Assert.That(merged.PercentileNs(50), Is.EqualTo(buckets.PercentileNs(50)));
    }

    // Two operations (bufferedWrite and directRead unless named) in both modes: unpatched at 100 ops/s with
    // latencies of 20-500 us, patched twice as fast.
    private static WorkloadResult Synthetic(params string[] ops)
    {
        string[] names = ops.Length > 0 ? ops : ["bufferedWrite", "directRead"];
        ModeResult Mode(BtrfsMode mode, double opsPerSec) => new()
        {
            Mode = mode,
            Runs = [],
            Ops = names.Select(op => new OpSummary(op, new Spread(opsPerSec, opsPerSec, opsPerSec), 30, 400, 500,
                new Emu.Workloads.Stress.LatencyBuckets([20_479, 30_719, 409_599, 520_191], [10, 80, 9, 1]))).ToList(),
        };
        return new WorkloadResult(new CompareWorkload { Name = "synthetic" }, Mode(BtrfsMode.Unpatched, 100), Mode(BtrfsMode.Patched, 200));
    }

    private static string FreshDir(string name)
    {
        string dir = Path.Combine(CliHarness.ScratchDir(nameof(CompareTests)), name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        return dir;
    }
}
