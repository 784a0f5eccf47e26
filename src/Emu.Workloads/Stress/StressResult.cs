// What `emu stress` measured.
using System.Numerics;
using System.Text.Json;
using Emu.Btrfs;
using Emu.Kernel.Stats;

namespace Emu.Workloads.Stress;

/// <summary>The operations of the stress mix.</summary>
public enum StressOp
{
    /// <summary>pwrite(2) through the page cache.</summary>
    BufferedWrite,

    /// <summary>pread(2) with O_DIRECT, spanning several blocks (and so several extents).</summary>
    DirectRead,

    /// <summary>pwrite(2) with O_DIRECT.</summary>
    DirectWrite,

    /// <summary>sync(2).</summary>
    Sync,

    /// <summary>ioctl(BTRFS_IOC_SNAP_CREATE_V2).</summary>
    Snapshot,
}

/// <summary>Throughput and latency of one operation type.</summary>
/// <param name="Op">The operation.</param>
/// <param name="Count">Operations completed (in a deadlocked run: up to the deadlock's detection).</param>
/// <param name="OpsPerSec">Completed per second of run time (in a deadlocked run: of the time up to the deadlock).</param>
/// <param name="P50Us">Median latency, in microseconds.</param>
/// <param name="P99Us">99th percentile latency, in microseconds.</param>
/// <param name="P999Us">99.9th percentile latency, in microseconds.</param>
/// <param name="Latency">The latency histogram, compacted (for CDFs, and to merge runs).</param>
public sealed record StressOpStats(StressOp Op, long Count, double OpsPerSec, double P50Us, double P99Us, double P999Us, LatencyBuckets Latency);

/// <summary>
/// A latency histogram as exported: the upper edge (ns) and count of each non-empty bucket, ascending. The
/// log-linear buckets of <see cref="LatencyHistogram"/> are coarsened to 8 per power of two (every value
/// within 12.5% of its edge), which keeps a run's JSON small; histograms of several runs merge exactly.
/// </summary>
/// <param name="UpperNs">Each bucket's upper edge, in ns, ascending.</param>
/// <param name="Counts">Each bucket's count.</param>
public sealed record LatencyBuckets(IReadOnlyList<long> UpperNs, IReadOnlyList<long> Counts)
{
    private const int SignificantBits = 4;

    /// <summary>Operations counted.</summary>
    public long Total => Counts.Sum();

    /// <summary>Compacts a histogram.</summary>
    public static LatencyBuckets Of(LatencyHistogram histogram)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        var merged = new SortedDictionary<long, long>();
        foreach ((long upper, long count) in histogram.Buckets())
        {
            long edge = CoarseEdge(upper);
            merged[edge] = merged.GetValueOrDefault(edge) + count;
        }

        return new LatencyBuckets(merged.Keys.ToArray(), merged.Values.ToArray());
    }

    /// <summary>The sum of several histograms.</summary>
    public static LatencyBuckets Merge(IEnumerable<LatencyBuckets> histograms)
    {
        ArgumentNullException.ThrowIfNull(histograms);
        var merged = new SortedDictionary<long, long>();
        foreach (LatencyBuckets h in histograms)
        {
            for (int i = 0; i < h.UpperNs.Count; i++)
            {
                merged[h.UpperNs[i]] = merged.GetValueOrDefault(h.UpperNs[i]) + h.Counts[i];
            }
        }

        return new LatencyBuckets(merged.Keys.ToArray(), merged.Values.ToArray());
    }

    /// <summary>The upper edge of the bucket holding percentile p (0..100), in ns; 0 when empty.</summary>
    public long PercentileNs(double p)
    {
        long total = Total;
        if (total == 0)
        {
            return 0;
        }

        long rank = Math.Max(1, (long)Math.Ceiling(p / 100.0 * total));
        long seen = 0;
        for (int i = 0; i < Counts.Count; i++)
        {
            seen += Counts[i];
            if (seen >= rank)
            {
                return UpperNs[i];
            }
        }

        return UpperNs[^1];
    }

    /// <summary>Reads the form <see cref="WriteJson"/> writes.</summary>
    public static LatencyBuckets FromJson(JsonElement e) =>
        new(e.GetProperty("upperNs").EnumerateArray().Select(v => v.GetInt64()).ToArray(),
            e.GetProperty("counts").EnumerateArray().Select(v => v.GetInt64()).ToArray());

    /// <summary>Writes { upperNs: [...], counts: [...] }.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteStartArray("upperNs");
        foreach (long v in UpperNs)
        {
            w.WriteNumberValue(v);
        }

        w.WriteEndArray();
        w.WriteStartArray("counts");
        foreach (long v in Counts)
        {
            w.WriteNumberValue(v);
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    // The upper edge of the range of values sharing v's top SignificantBits bits; the finer buckets of
    // LatencyHistogram nest inside these ranges.
    private static long CoarseEdge(long v)
    {
        int shift = Math.Max(0, 64 - BitOperations.LeadingZeroCount((ulong)v) - SignificantBits);
        return ((v >> shift) << shift) + (1L << shift) - 1;
    }
}

/// <summary>The outcome of a stress run.</summary>
public sealed record StressResult
{
    /// <summary>The mode run.</summary>
    public required BtrfsMode Mode { get; init; }

    /// <summary>The seed of the run's choices.</summary>
    public required ulong Seed { get; init; }

    /// <summary>The backing store.</summary>
    public required string Backing { get; init; }

    /// <summary>The engine that ran.</summary>
    public required string Engine { get; init; }

    /// <summary>Files, file size, data tasks.</summary>
    public required StressOptions Options { get; init; }

    /// <summary>How long the workload ran, in ms.</summary>
    public long RuntimeMs { get; init; }

    /// <summary>Per-operation throughput and latency.</summary>
    public IReadOnlyList<StressOpStats> Stats { get; init; } = [];

    /// <summary>Whether the wait-for graph found a circular wait.</summary>
    public bool Deadlocked { get; init; }

    /// <summary>Time from the start of the workload to the first deadlock, in ms.</summary>
    public long? TimeToFirstDeadlockMs { get; init; }

    /// <summary>The first deadlock's report lines.</summary>
    public IReadOnlyList<string> DeadlockReport { get; init; } = [];

    /// <summary>
    /// The first cycles the wait-for graph reported that resolved within the confirmation period (with the
    /// members' stacks when reported): false positives of the graph, listed for whoever maintains it.
    /// </summary>
    public IReadOnlyList<string> TransientCycles { get; init; } = [];

    /// <summary>How many transient cycles were reported (the first few are in <see cref="TransientCycles"/>).</summary>
    public long TransientCycleCount { get; init; }

    /// <summary>Tasks khungtaskd reported hung ("comm:pid").</summary>
    public IReadOnlyList<string> HungTasks { get; init; } = [];

    /// <summary>Data mismatches (at most the first 100).</summary>
    public IReadOnlyList<Mismatch> Mismatches { get; init; } = [];

    /// <summary>Total mismatches found (may exceed the list).</summary>
    public long MismatchCount { get; init; }

    /// <summary>Bytes read and checked against the shadow model (during the run and at the end).</summary>
    public long VerifiedBytes { get; init; }

    /// <summary>Whether every file was checked after the run (after sync).</summary>
    public bool FinalCheckDone { get; init; }

    /// <summary>Snapshots created.</summary>
    public long Snapshots { get; init; }

    /// <summary>Blocks a read saw torn between legal values while racing a write (legal; counted).</summary>
    public long TornBlocks { get; init; }

    /// <summary>Reads and writes that failed or came back short (the backing store should never fill up).</summary>
    public long IoErrors { get; init; }

    /// <summary>The first of them, or null.</summary>
    public string? FirstIoError { get; init; }

    /// <summary>A problem that stopped the run other than a deadlock, hang or mismatch, or null.</summary>
    public string? Failure { get; init; }

    /// <summary>Whether the run found something wrong: a deadlock, a hang, a mismatch, or a failure.</summary>
    public bool FoundProblem => Deadlocked || HungTasks.Count > 0 || MismatchCount > 0 || IoErrors > 0 || Failure is not null;

    /// <summary>Writes the result as one JSON object.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteString("mode", Mode.ToString().ToLowerInvariant());
        w.WriteNumber("seed", Seed);
        w.WriteString("backing", Backing);
        w.WriteString("engine", Engine);
        w.WriteNumber("files", Options.Files);
        w.WriteNumber("fileSize", Options.FileSize);
        w.WriteNumber("tasks", Options.Tasks);
        w.WriteNumber("dioWriters", Options.DirectWriters);
        if (Options.Readers is { } readers)
        {
            w.WriteNumber("readers", readers);
        }
        else
        {
            w.WriteNull("readers");
        }

        w.WriteBoolean("conflicts", Options.Conflicts);
        if (Options.BlockSize is { } bs)
        {
            w.WriteNumber("bs", bs);
        }
        else
        {
            w.WriteNull("bs");
        }

        w.WriteNumber("runtimeMs", RuntimeMs);
        w.WriteStartObject("ops");
        foreach (StressOpStats s in Stats)
        {
            w.WriteStartObject(JsonNamingPolicy.CamelCase.ConvertName(s.Op.ToString()));
            w.WriteNumber("count", s.Count);
            w.WriteNumber("opsPerSec", Math.Round(s.OpsPerSec, 1));
            w.WriteNumber("p50Us", Math.Round(s.P50Us, 1));
            w.WriteNumber("p99Us", Math.Round(s.P99Us, 1));
            w.WriteNumber("p999Us", Math.Round(s.P999Us, 1));
            w.WritePropertyName("latency");
            s.Latency.WriteJson(w);
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteBoolean("deadlocked", Deadlocked);
        if (TimeToFirstDeadlockMs is { } t)
        {
            w.WriteNumber("timeToFirstDeadlockMs", t);
        }
        else
        {
            w.WriteNull("timeToFirstDeadlockMs");
        }

        w.WriteStartArray("deadlockReport");
        foreach (string line in DeadlockReport)
        {
            w.WriteStringValue(line);
        }

        w.WriteEndArray();
        w.WriteNumber("transientCycleCount", TransientCycleCount);
        w.WriteStartArray("transientCycles");
        foreach (string line in TransientCycles)
        {
            w.WriteStringValue(line);
        }

        w.WriteEndArray();
        w.WriteNumber("hangs", HungTasks.Count);
        w.WriteStartArray("hungTasks");
        foreach (string h in HungTasks)
        {
            w.WriteStringValue(h);
        }

        w.WriteEndArray();
        w.WriteNumber("mismatches", MismatchCount);
        w.WriteStartArray("mismatchList");
        foreach (Mismatch m in Mismatches)
        {
            w.WriteStartObject();
            w.WriteNumber("file", m.File);
            w.WriteNumber("inode", m.Ino);
            w.WriteNumber("offset", m.Offset);
            w.WriteString("expected", m.Expected);
            w.WriteString("found", m.Found);
            w.WriteString("context", m.Context);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteNumber("verifiedBytes", VerifiedBytes);
        w.WriteNumber("tornBlocks", TornBlocks);
        w.WriteBoolean("finalCheckDone", FinalCheckDone);
        w.WriteNumber("snapshots", Snapshots);
        w.WriteNumber("ioErrors", IoErrors);
        if (FirstIoError is null)
        {
            w.WriteNull("firstIoError");
        }
        else
        {
            w.WriteString("firstIoError", FirstIoError);
        }

        if (Failure is null)
        {
            w.WriteNull("failure");
        }
        else
        {
            w.WriteString("failure", Failure);
        }

        w.WriteEndObject();
    }
}
