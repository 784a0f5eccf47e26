// The tables `emu compare` prints (Spectre.Console): per workload and operation the median throughput of
// each mode with its spread over the runs, the latency percentiles, and the patched/unpatched ratio; then per
// workload and mode the deadlocks, hangs, time to the first deadlock and the data verified.
using System.Globalization;
using Emu.Cli.Commands;
using Emu.Workloads.Compare;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Emu.Cli.Report;

/// <summary>Prints compare's results as tables.</summary>
internal static class CompareTable
{
    // Wide enough for both tables unwrapped when the output is a file or pipe (no terminal width to follow).
    private const int RedirectedWidth = 160;

    public static void Write(TextWriter output, IReadOnlyList<WorkloadResult> results, int repeat)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        if (output != Console.Out || Console.IsOutputRedirected)
        {
            console.Profile.Width = RedirectedWidth;
        }

        console.Write(Throughput(results, repeat));
        console.Write(Detection(results, repeat));
    }

    private static Table Throughput(IReadOnlyList<WorkloadResult> results, int repeat)
    {
        var table = new Table { Title = new TableTitle($"Throughput and latency: median of {repeat} run{(repeat == 1 ? "" : "s")} per mode (min-max); latency p50/p99/p99.9") };
        table.AddColumn("workload");
        table.AddColumn("op");
        table.AddColumn(new TableColumn("unpatched ops/s").RightAligned());
        table.AddColumn(new TableColumn("unpatched latency").RightAligned().NoWrap());
        table.AddColumn(new TableColumn("patched ops/s").RightAligned());
        table.AddColumn(new TableColumn("patched latency").RightAligned().NoWrap());
        table.AddColumn(new TableColumn("patched/unpatched").RightAligned());
        foreach (WorkloadResult r in results)
        {
            // A workload without timed operations (repro) shows up only in the deadlock table.
            string[] ops = r.OpNames.ToArray();
            for (int i = 0; i < ops.Length; i++)
            {
                OpSummary? u = r.Unpatched.Op(ops[i]), p = r.Patched.Op(ops[i]);
                table.AddRow(Cell(i == 0 ? r.Workload.Name : ""), Cell(ops[i]), Cell(Ops(u)), Cell(Latency(u)), Cell(Ops(p)), Cell(Latency(p)),
                    Cell(r.Ratio(ops[i]) is { } ratio ? ratio.ToString("0.00", CultureInfo.InvariantCulture) : WorkloadResult.IsPaced(ops[i]) ? "paced" : "n/a"));
            }
        }

        return table;
    }

    private static Table Detection(IReadOnlyList<WorkloadResult> results, int repeat)
    {
        var table = new Table { Title = new TableTitle($"Deadlocks and hangs (runs out of {repeat}); time to first deadlock: median (min-max)") };
        table.AddColumn("workload");
        table.AddColumn("mode");
        table.AddColumn(new TableColumn("deadlocks").RightAligned());
        table.AddColumn(new TableColumn("hangs").RightAligned());
        table.AddColumn(new TableColumn("first deadlock").RightAligned());
        table.AddColumn(new TableColumn("verified").RightAligned());
        table.AddColumn(new TableColumn("mismatches").RightAligned());
        table.AddColumn(new TableColumn("failed runs").RightAligned());
        foreach (WorkloadResult r in results)
        {
            foreach (ModeResult m in new[] { r.Unpatched, r.Patched })
            {
                table.AddRow(
                    Cell(m == r.Unpatched ? r.Workload.Name : ""),
                    Cell(ReproCommand.ModeName(m.Mode)),
                    Cell($"{m.Deadlocks}/{m.Runs.Count}"),
                    Cell($"{m.Hangs}/{m.Runs.Count}"),
                    Cell(m.TimeToFirstDeadlockMs is { } t ? $"{Ms(t.Median)} ({Ms(t.Min)}-{Ms(t.Max)})" : "-"),
                    Cell(Bytes(m.VerifiedBytes)),
                    Cell(m.Mismatches.ToString(CultureInfo.InvariantCulture)),
                    Cell(m.Failures.ToString(CultureInfo.InvariantCulture)));
            }
        }

        return table;
    }

    private static string Ops(OpSummary? s) => s is null
        ? "-"
        : string.Create(CultureInfo.InvariantCulture, $"{Num(s.ThroughputOpsPerSec.Median)} ({Num(s.ThroughputOpsPerSec.Min)}-{Num(s.ThroughputOpsPerSec.Max)})");

    private static string Latency(OpSummary? s) => s is null || s.Latency.Total == 0 ? "-" : $"{Us(s.P50Us)}/{Us(s.P99Us)}/{Us(s.P999Us)}";

    private static string Num(double v) => v.ToString(v >= 100 ? "0" : "0.#", CultureInfo.InvariantCulture);

    private static string Us(double us) => us switch
    {
        >= 1_000_000 => (us / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "s",
        >= 1000 => (us / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "ms",
        _ => us.ToString("0", CultureInfo.InvariantCulture) + "us",
    };

    private static string Ms(double ms) => Us(ms * 1000);

    private static string Bytes(long b) => b >= 1 << 20
        ? (b / (double)(1 << 20)).ToString("0.#", CultureInfo.InvariantCulture) + " MiB"
        : (b / 1024.0).ToString("0.#", CultureInfo.InvariantCulture) + " KiB";

    private static IRenderable Cell(string text) => new Text(text);
}
