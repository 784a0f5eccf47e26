using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Emu.Cli.Bench;
using Emu.Cli.Progress;
using Emu.Kernel;
using Emu.Kernel.Stats;

namespace Emu.Cli.Commands;

/// <summary>`emu wq`: the workqueue's own tools. `emu wq bench` measures queue-to-execute throughput.</summary>
internal static class WqCommand
{
    public static Command Create()
    {
        var wq = new Command("wq", "Workqueue tools.");
        wq.Subcommands.Add(CreateBench());
        return wq;
    }

    private static Command CreateBench()
    {
        var items = new Option<int>("--items") { Description = "Empty work items queued per round and mechanism.", DefaultValueFactory = _ => 200_000 };
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds per mechanism (the mechanisms alternate); the median is reported.", DefaultValueFactory = _ => 5 };
        var maxActive = new Option<int?>("--max-active") { Description = "max_active of the workqueues; default: the number of CPUs (the thread pool's concurrency); 0: the kernel's default (256)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var quiet = new Option<bool>("--quiet") { Description = "No progress display; only the results." };
        var command = new Command("bench", "Queue-to-execute throughput and latency of empty work items: Emu's unbound and bound workqueues against the .NET thread pool; then each side of the unbound workqueue (queue_work, its workers) timed alone.")
        {
            items, rounds, maxActive, json, quiet,
        };
        command.SetAction(p => Execute(p.GetValue(items), p.GetValue(rounds), p.GetValue(maxActive), p.GetValue(json), p.GetValue(quiet)));
        return command;
    }

    private static int Execute(int items, int rounds, int? maxActive, bool json, bool quiet)
    {
        if (items < 1 || items > 50_000_000)
            throw new UsageException($"--items {items} is out of range; use 1 to 50000000");
        if (rounds < 1 || rounds > 1000)
            throw new UsageException($"--rounds {rounds} is out of range; use 1 to 1000");
        if (maxActive is < 0 or > WqLimits.MaxActive)
            throw new UsageException($"--max-active {maxActive} is out of range; use 0 (the kernel's default) to {WqLimits.MaxActive}");

        WqBenchResult result = ProgressDisplay.For(json || quiet).RunTimed("wq bench", null, () => WqBench.Run(items, rounds, maxActive));
        if (json) WriteJson(result);
        else WriteText(result);
        return CommandRunner.ExitOk;
    }

    private static void WriteText(WqBenchResult r)
    {
        Console.WriteLine($"wq bench: {r.Items} empty work items per round, {r.Rounds} rounds per mechanism, max_active {r.MaxActive} (median ops/s; latency queue->start)");
        Console.WriteLine("  mechanism      ops/s         p50(us)   p99(us)   p99.9(us)  max(us)");
        foreach (WqBenchMechanism m in new[] { r.ThreadPool, r.EmuUnbound, r.EmuBound })
        {
            LatencyHistogram l = m.Latency;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {m.Name,-13}  {m.MedianOpsPerSec,12:N0}  {Us(l.PercentileNs(50)),8:F1}  {Us(l.PercentileNs(99)),8:F1}  {Us(l.PercentileNs(99.9)),9:F1}  {Us(l.MaxNs),8:F1}"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  emu-unbound / threadpool = {Ratio(r.EmuUnbound, r.ThreadPool):F2}x   emu-bound / threadpool = {Ratio(r.EmuBound, r.ThreadPool):F2}x"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  emu-unbound, each side alone: queue_work {r.EmuUnboundAlone.MedianQueueWorkNs:F1} ns/item, workers {r.EmuUnboundAlone.MedianWorkersNs:F1} ns/item " +
            $"(both at once, meeting on pool->lock: {1e9 / r.EmuUnbound.MedianOpsPerSec:F1} ns/item)"));
    }

    private static void WriteJson(WqBenchResult r)
    {
        Console.WriteLine(JsonText.Of(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("emuOpsPerSec", Math.Round(r.EmuUnbound.MedianOpsPerSec));
            w.WriteNumber("threadPoolOpsPerSec", Math.Round(r.ThreadPool.MedianOpsPerSec));
            w.WriteNumber("ratio", Math.Round(Ratio(r.EmuUnbound, r.ThreadPool), 3));
            w.WriteNumber("emuUnboundOpsPerSec", Math.Round(r.EmuUnbound.MedianOpsPerSec));
            w.WriteNumber("emuBoundOpsPerSec", Math.Round(r.EmuBound.MedianOpsPerSec));
            w.WriteNumber("boundRatio", Math.Round(Ratio(r.EmuBound, r.ThreadPool), 3));
            w.WriteNumber("items", r.Items);
            w.WriteNumber("maxActive", r.MaxActive);
            w.WriteNumber("rounds", r.Rounds);
            w.WriteStartObject("emuUnboundAloneNsPerItem");
            w.WriteNumber("queueWork", Math.Round(r.EmuUnboundAlone.MedianQueueWorkNs, 1));
            w.WriteNumber("workers", Math.Round(r.EmuUnboundAlone.MedianWorkersNs, 1));
            w.WriteEndObject();
            w.WriteStartObject("latencyUs");
            foreach (WqBenchMechanism m in new[] { r.ThreadPool, r.EmuUnbound, r.EmuBound })
            {
                LatencyHistogram l = m.Latency;
                w.WriteStartObject(JsonName(m));
                w.WriteNumber("p50", Us(l.PercentileNs(50)));
                w.WriteNumber("p90", Us(l.PercentileNs(90)));
                w.WriteNumber("p99", Us(l.PercentileNs(99)));
                w.WriteNumber("p999", Us(l.PercentileNs(99.9)));
                w.WriteNumber("max", Us(l.MaxNs));
                w.WriteNumber("mean", Math.Round(l.MeanNs / 1000.0, 3));
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteStartObject("roundsOpsPerSec");
            foreach (WqBenchMechanism m in new[] { r.ThreadPool, r.EmuUnbound, r.EmuBound })
            {
                w.WriteStartArray(JsonName(m));
                foreach (double ops in m.RoundOpsPerSec)
                    w.WriteNumberValue(Math.Round(ops));
                w.WriteEndArray();
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }));
    }

    private static string JsonName(WqBenchMechanism m) => m.Name switch
    {
        "threadpool" => "threadPool",
        "emu-unbound" => "emuUnbound",
        _ => "emuBound",
    };

    private static double Ratio(WqBenchMechanism emu, WqBenchMechanism pool) => emu.MedianOpsPerSec / pool.MedianOpsPerSec;

    private static double Us(long ns) => ns / 1000.0;
}
