// What `emu compare` measured: the raw result of every child run, per workload and mode, and their summary
// (medians and spreads over the repeats, merged latency histograms, deadlocks and hangs), written as
// results.json. The runs are kept as the JSON the child printed (`emu stress --json` / `emu repro --json`),
// so results.json holds everything a run reported and the summary can be recomputed from it.
using System.Globalization;
using System.Text.Json;
using Emu.Btrfs;
using Emu.Workloads.Stress;

namespace Emu.Workloads.Compare;

/// <summary>One child run: its exit code and the JSON object it printed, or why it gave none.</summary>
/// <param name="Seed">The seed of a stress run, null for repro.</param>
/// <param name="ExitCode">The child's exit status.</param>
/// <param name="Result">The child's JSON result, or null when it failed.</param>
/// <param name="Failure">Why the run failed (no result, a failure it reported), or null.</param>
public sealed record CompareRun(ulong? Seed, int ExitCode, JsonElement? Result, string? Failure);

/// <summary>Median, min and max of one quantity over the runs.</summary>
public sealed record Spread(double Median, double Min, double Max)
{
    /// <summary>The spread of the values, or null when there are none.</summary>
    public static Spread? Of(IEnumerable<double> values)
    {
        double[] v = values.Order().ToArray();
        if (v.Length == 0)
        {
            return null;
        }

        double median = v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
        return new Spread(median, v[0], v[^1]);
    }
}

/// <summary>One operation type over the runs of one mode.</summary>
/// <param name="Op">The operation's JSON name (bufferedWrite, directRead, ...).</param>
/// <param name="ThroughputOpsPerSec">Operations per second of run time (up to the deadlock in a deadlocked run).</param>
/// <param name="P50Us">Median over the runs of each run's median latency, in microseconds.</param>
/// <param name="P99Us">Median over the runs of each run's 99th percentile, in microseconds.</param>
/// <param name="P999Us">Median over the runs of each run's 99.9th percentile, in microseconds.</param>
/// <param name="Latency">The runs' latency histograms merged.</param>
public sealed record OpSummary(string Op, Spread ThroughputOpsPerSec, double P50Us, double P99Us, double P999Us, LatencyBuckets Latency);

/// <summary>All runs of one workload in one mode, and their summary.</summary>
public sealed record ModeResult
{
    /// <summary>The kernel emulated.</summary>
    public required BtrfsMode Mode { get; init; }

    /// <summary>The runs, in order.</summary>
    public required IReadOnlyList<CompareRun> Runs { get; init; }

    /// <summary>Per operation type, in the stress result's order; empty for repro.</summary>
    public IReadOnlyList<OpSummary> Ops { get; init; } = [];

    /// <summary>Runs that deadlocked.</summary>
    public int Deadlocks { get; init; }

    /// <summary>Runs in which khungtaskd reported a hung task.</summary>
    public int Hangs { get; init; }

    /// <summary>Time from the start to the first deadlock, over the runs that deadlocked; null when none did.</summary>
    public Spread? TimeToFirstDeadlockMs { get; init; }

    /// <summary>Bytes read and checked against what the writes left, over all runs.</summary>
    public long VerifiedBytes { get; init; }

    /// <summary>Data mismatches over all runs.</summary>
    public long Mismatches { get; init; }

    /// <summary>Runs that failed to give a result or reported a failure.</summary>
    public int Failures { get; init; }

    /// <summary>Summarizes the runs of one mode.</summary>
    public static ModeResult Summarize(BtrfsMode mode, CompareKind kind, IReadOnlyList<CompareRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        JsonElement[] results = runs.Where(r => r.Result is not null).Select(r => r.Result!.Value).ToArray();
        var ops = new List<OpSummary>();
        if (kind == CompareKind.Stress)
        {
            foreach (StressOp op in Enum.GetValues<StressOp>())
            {
                string name = JsonNamingPolicy.CamelCase.ConvertName(op.ToString());
                JsonElement[] mine = results.Select(r => r.GetProperty("ops").TryGetProperty(name, out JsonElement o) ? o : default)
                    .Where(o => o.ValueKind == JsonValueKind.Object).ToArray();
                JsonElement[] counted = mine.Where(o => o.GetProperty("count").GetInt64() > 0).ToArray();
                if (mine.Length == 0)
                {
                    continue;
                }

                ops.Add(new OpSummary(
                    name,
                    Spread.Of(mine.Select(o => o.GetProperty("opsPerSec").GetDouble()))!,
                    Spread.Of(counted.Select(o => o.GetProperty("p50Us").GetDouble()))?.Median ?? 0,
                    Spread.Of(counted.Select(o => o.GetProperty("p99Us").GetDouble()))?.Median ?? 0,
                    Spread.Of(counted.Select(o => o.GetProperty("p999Us").GetDouble()))?.Median ?? 0,
                    LatencyBuckets.Merge(mine.Select(o => LatencyBuckets.FromJson(o.GetProperty("latency"))))));
            }
        }

        string timeField = kind == CompareKind.Stress ? "timeToFirstDeadlockMs" : "timeToCycleMs";
        return new ModeResult
        {
            Mode = mode,
            Runs = runs,
            Ops = ops,
            Deadlocks = results.Count(r => r.GetProperty("deadlocked").GetBoolean()),
            Hangs = results.Count(r => HungTasks(r) > 0),
            TimeToFirstDeadlockMs = Spread.Of(results.Select(r => r.GetProperty(timeField))
                .Where(t => t.ValueKind == JsonValueKind.Number).Select(t => t.GetDouble())),
            VerifiedBytes = results.Sum(r => r.GetProperty("verifiedBytes").GetInt64()),
            Mismatches = results.Sum(MismatchCount),
            Failures = runs.Count(r => r.Failure is not null),
        };
    }

    /// <summary>The summary of one operation type, or null when this mode has none.</summary>
    public OpSummary? Op(string op) => Ops.FirstOrDefault(o => o.Op == op);

    private static int HungTasks(JsonElement r) =>
        r.TryGetProperty("hangs", out JsonElement n) ? n.GetInt32() : r.GetProperty("hungTasks").GetArrayLength();

    private static long MismatchCount(JsonElement r)
    {
        JsonElement m = r.GetProperty("mismatches");
        return m.ValueKind == JsonValueKind.Array ? m.GetArrayLength() : m.GetInt64();
    }
}

/// <summary>One workload in both modes.</summary>
/// <param name="Workload">What ran.</param>
/// <param name="Unpatched">The v4.4 runs.</param>
/// <param name="Patched">The v4.6 runs.</param>
public sealed record WorkloadResult(CompareWorkload Workload, ModeResult Unpatched, ModeResult Patched)
{
    /// <summary>The operation types either mode ran, in order.</summary>
    public IEnumerable<string> OpNames => Unpatched.Ops.Select(o => o.Op).Union(Patched.Ops.Select(o => o.Op))
        .Where(op => (Unpatched.Op(op)?.Latency.Total ?? 0) + (Patched.Op(op)?.Latency.Total ?? 0) > 0);

    /// <summary>
    /// Whether the stress workload sets the pace of an operation rather than the kernel: snapshots come 40 back to
    /// back, then spread over the run time, at most 100 per run, so their rate reflects the run's length and when
    /// it deadlocked, not either kernel.
    /// </summary>
    public static bool IsPaced(string op) => op == "snapshot";

    /// <summary>Patched over unpatched median throughput of an operation, or null when unpatched did none or the op is paced.</summary>
    public double? Ratio(string op) =>
        !IsPaced(op) && Unpatched.Op(op)?.ThroughputOpsPerSec.Median is > 0 and var u && Patched.Op(op) is { } p ? p.ThroughputOpsPerSec.Median / u : null;
}

/// <summary>The machine compare ran on.</summary>
/// <param name="CpuModel">/proc/cpuinfo's model name.</param>
/// <param name="Cpus">Logical CPUs.</param>
/// <param name="Nodes">NUMA nodes.</param>
public sealed record CompareMachine(string CpuModel, int Cpus, int Nodes);

/// <summary>Everything one `emu compare` measured: results.json.</summary>
public sealed record CompareResults
{
    /// <summary>The version of results.json's layout; raised when a field changes meaning or goes away.</summary>
    public const int SchemaVersion = 1;

    /// <summary>Emu's version.</summary>
    public required string EmuVersion { get; init; }

    /// <summary>Where it ran.</summary>
    public required CompareMachine Machine { get; init; }

    /// <summary>When it started.</summary>
    public required DateTimeOffset Started { get; init; }

    /// <summary>Wall time of the whole compare, in ms.</summary>
    public long WallMs { get; init; }

    /// <summary>The options the compare ran with: name and value (a string, a whole number, or a list of strings).</summary>
    public required IReadOnlyList<KeyValuePair<string, object>> Options { get; init; }

    /// <summary>Each workload in both modes.</summary>
    public required IReadOnlyList<WorkloadResult> Workloads { get; init; }

    /// <summary>Writes results.json.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteNumber("version", SchemaVersion);
        w.WriteString("emuVersion", EmuVersion);
        w.WriteStartObject("machine");
        w.WriteString("cpuModel", Machine.CpuModel);
        w.WriteNumber("cpus", Machine.Cpus);
        w.WriteNumber("nodes", Machine.Nodes);
        w.WriteEndObject();
        w.WriteString("started", Started.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        w.WriteNumber("wallMs", WallMs);
        w.WriteStartObject("options");
        foreach ((string key, object value) in Options)
        {
            switch (value)
            {
                case long n:
                    w.WriteNumber(key, n);
                    break;
                case ulong u:
                    w.WriteNumber(key, u);
                    break;
                case IEnumerable<string> list:
                    w.WriteStartArray(key);
                    foreach (string item in list)
                    {
                        w.WriteStringValue(item);
                    }

                    w.WriteEndArray();
                    break;
                default:
                    w.WriteString(key, value.ToString());
                    break;
            }
        }

        w.WriteEndObject();
        w.WriteStartArray("workloads");
        foreach (WorkloadResult r in Workloads)
        {
            w.WriteStartObject();
            w.WriteString("name", r.Workload.Name);
            w.WriteString("source", r.Workload.Source);
            w.WriteString("kind", r.Workload.Kind.ToString().ToLowerInvariant());
            w.WriteString("description", r.Workload.Description);
            w.WriteStartObject("modes");
            WriteMode(w, "unpatched", r.Unpatched);
            WriteMode(w, "patched", r.Patched);
            w.WriteEndObject();
            w.WriteStartObject("ratios");
            foreach (string op in r.OpNames)
            {
                WriteNumberOrNull(w, op, r.Ratio(op) is { } ratio ? Math.Round(ratio, 3) : null);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteMode(Utf8JsonWriter w, string name, ModeResult m)
    {
        w.WriteStartObject(name);
        w.WriteStartArray("runs");
        foreach (CompareRun run in m.Runs)
        {
            w.WriteStartObject();
            WriteNumberOrNull(w, "seed", run.Seed);
            w.WriteNumber("exitCode", run.ExitCode);
            if (run.Failure is null)
            {
                w.WriteNull("failure");
            }
            else
            {
                w.WriteString("failure", run.Failure);
            }

            w.WritePropertyName("result");
            if (run.Result is { } result)
            {
                result.WriteTo(w);
            }
            else
            {
                w.WriteNullValue();
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartObject("summary");
        w.WriteNumber("runs", m.Runs.Count);
        w.WriteStartObject("ops");
        foreach (OpSummary op in m.Ops)
        {
            w.WriteStartObject(op.Op);
            w.WriteStartObject("throughput");
            w.WriteString("unit", "ops/s");
            WriteSpread(w, op.ThroughputOpsPerSec, 1);
            w.WriteEndObject();
            w.WriteStartObject("latency");
            w.WriteString("unit", "us");
            w.WriteNumber("p50", Math.Round(op.P50Us, 1));
            w.WriteNumber("p99", Math.Round(op.P99Us, 1));
            w.WriteNumber("p999", Math.Round(op.P999Us, 1));
            w.WritePropertyName("histogram");
            op.Latency.WriteJson(w);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteNumber("deadlocks", m.Deadlocks);
        w.WriteNumber("hangs", m.Hangs);
        if (m.TimeToFirstDeadlockMs is { } t)
        {
            w.WriteStartObject("timeToFirstDeadlockMs");
            WriteSpread(w, t, 0);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("timeToFirstDeadlockMs");
        }

        w.WriteNumber("verifiedBytes", m.VerifiedBytes);
        w.WriteNumber("mismatches", m.Mismatches);
        w.WriteNumber("failures", m.Failures);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteSpread(Utf8JsonWriter w, Spread s, int digits)
    {
        w.WriteNumber("median", Math.Round(s.Median, digits));
        w.WriteNumber("min", Math.Round(s.Min, digits));
        w.WriteNumber("max", Math.Round(s.Max, digits));
    }

    private static void WriteNumberOrNull(Utf8JsonWriter w, string name, double? value)
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

    private static void WriteNumberOrNull(Utf8JsonWriter w, string name, ulong? value)
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
}
