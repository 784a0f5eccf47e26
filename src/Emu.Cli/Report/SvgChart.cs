// The plots of `emu compare`, written as SVG by hand (no native dependencies): bars of the patched/unpatched
// throughput ratio per workload and operation, and per workload the latency CDF of each operation with one
// line per mode on a logarithmic time axis. Each chart has a title, labelled axes with ticks, and a legend.
using System.Globalization;
using System.Text;
using Emu.Workloads.Compare;
using Emu.Workloads.Stress;

namespace Emu.Cli.Report;

/// <summary>Draws compare's charts as SVG documents.</summary>
internal static class SvgChart
{
    private const int Width = 960;
    private const int Height = 520;
    private const int Left = 80;
    private const int Right = 230;
    private const int Top = 56;
    private const int Bottom = 80;
    private const string Font = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

    private static readonly Dictionary<string, string> s_opColors = new()
    {
        ["bufferedWrite"] = "#1f77b4",
        ["directRead"] = "#d62728",
        ["directWrite"] = "#9467bd",
        ["sync"] = "#2ca02c",
        ["snapshot"] = "#ff7f0e",
    };

    /// <summary>Grouped bars: per workload, each operation's median throughput patched over unpatched.</summary>
    public static string RatioBars(IReadOnlyList<WorkloadResult> results, int repeat)
    {
        var groups = results.Select(r => (r.Workload.Name, Bars: r.OpNames.Select(op => (Op: op, Ratio: r.Ratio(op))).ToList()))
            .Where(g => g.Bars.Count > 0).ToList();
        string[] ops = groups.SelectMany(g => g.Bars.Select(b => b.Op)).Distinct().ToArray();
        double top = Math.Max(1.2, groups.SelectMany(g => g.Bars).Select(b => b.Ratio ?? 0).DefaultIfEmpty(0).Max() * 1.1);
        double[] ticks = NiceTicks(top);
        top = ticks[^1];
        var svg = Begin($"Throughput ratio, patched (v4.6) / unpatched (v4.4): median of {repeat} run{(repeat == 1 ? "" : "s")} each");
        int plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double Y(double v) => Top + plotH - (v / top * plotH);
        foreach (double t in ticks)
        {
            GridLine(svg, Y(t));
            Text(svg, Left - 8, Y(t) + 4, Fmt(t, t < 10 ? "0.##" : "0"), "end");
        }

        Axes(svg, "workload", "patched / unpatched ops/s");
        double groupW = groups.Count == 0 ? plotW : (double)plotW / groups.Count;
        for (int g = 0; g < groups.Count; g++)
        {
            var bars = groups[g].Bars;
            double barW = Math.Min(40, groupW * 0.8 / bars.Count);
            double x0 = Left + (g * groupW) + ((groupW - (barW * bars.Count)) / 2);
            for (int b = 0; b < bars.Count; b++)
            {
                double x = x0 + (b * barW);
                if (bars[b].Ratio is { } ratio)
                {
                    svg.Append(Inv($"<rect x=\"{x + 1:0.#}\" y=\"{Y(ratio):0.#}\" width=\"{barW - 2:0.#}\" height=\"{Y(0) - Y(ratio):0.#}\" fill=\"{Color(bars[b].Op)}\"><title>{Esc(groups[g].Name)} {bars[b].Op}: {ratio:0.###}</title></rect>\n"));
                    Text(svg, x + (barW / 2), Y(ratio) - 4, Fmt(ratio, "0.00"), "middle", 10);
                }
                else
                {
                    Text(svg, x + (barW / 2), Y(0) - 4, WorkloadResult.IsPaced(bars[b].Op) ? "paced" : "n/a", "middle", 10);
                }
            }

            Text(svg, Left + (g * groupW) + (groupW / 2), Top + plotH + 20, groups[g].Name, "middle");
        }

        svg.Append(Inv($"<line x1=\"{Left}\" y1=\"{Y(1):0.#}\" x2=\"{Left + plotW}\" y2=\"{Y(1):0.#}\" stroke=\"#333\" stroke-dasharray=\"6 4\"/>\n"));
        Legend(svg, [.. ops.Select(op => (op, Color(op), false)), ("1 = same throughput", "#333", true)]);
        return End(svg);
    }

    /// <summary>The latency CDF of each operation of one workload, one line per mode, on a log time axis.</summary>
    public static string LatencyCdf(WorkloadResult result)
    {
        var lines = new List<(string Label, string Color, bool Dashed, LatencyBuckets Latency)>();
        foreach (string op in result.OpNames)
        {
            foreach (ModeResult m in new[] { result.Unpatched, result.Patched })
            {
                if (m.Op(op) is { Latency.Total: > 0 } s)
                {
                    lines.Add(($"{op}, {ReproCommandModeName(m)}", Color(op), m == result.Unpatched, s.Latency));
                }
            }
        }

        var svg = Begin($"{result.Workload.Name}: latency CDF per operation (all runs merged); dashed unpatched, solid patched");
        long minNs = lines.Select(l => l.Latency.UpperNs.First(v => v > 0)).DefaultIfEmpty(1000).Min();
        long maxNs = lines.Select(l => l.Latency.UpperNs[^1]).DefaultIfEmpty(1_000_000).Max();
        int lo = (int)Math.Floor(Math.Log10(Math.Max(1, minNs)));
        int hi = Math.Max(lo + 1, (int)Math.Ceiling(Math.Log10(Math.Max(1, maxNs))));
        int plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double X(double ns) => Left + ((Math.Log10(Math.Max(ns, Math.Pow(10, lo))) - lo) / (hi - lo) * plotW);
        double Y(double f) => Top + plotH - (f * plotH);
        for (int d = lo; d <= hi; d++)
        {
            double x = X(Math.Pow(10, d));
            svg.Append(Inv($"<line x1=\"{x:0.#}\" y1=\"{Top}\" x2=\"{x:0.#}\" y2=\"{Top + plotH}\" stroke=\"#ddd\"/>\n"));
            Text(svg, x, Top + plotH + 18, Duration(Math.Pow(10, d)), "middle");
        }

        foreach (double f in new[] { 0, 0.25, 0.5, 0.75, 0.9, 1.0 })
        {
            GridLine(svg, Y(f));
            Text(svg, Left - 8, Y(f) + 4, Fmt(f, "0.##"), "end");
        }

        Axes(svg, "latency (log scale)", "fraction of operations at or below");
        foreach (var line in lines)
        {
            var points = new StringBuilder();
            long total = line.Latency.Total, seen = 0;
            double prevX = X(line.Latency.UpperNs[0]);
            points.Append(Inv($"{prevX:0.#},{Y(0):0.#}"));
            for (int i = 0; i < line.Latency.UpperNs.Count; i++)
            {
                double x = X(line.Latency.UpperNs[i]);
                points.Append(Inv($" {x:0.#},{Y((double)seen / total):0.#}"));
                seen += line.Latency.Counts[i];
                points.Append(Inv($" {x:0.#},{Y((double)seen / total):0.#}"));
            }

            svg.Append(Inv($"<polyline fill=\"none\" stroke=\"{line.Color}\" stroke-width=\"2\"{(line.Dashed ? " stroke-dasharray=\"7 4\"" : "")} points=\"{points}\"><title>{Esc(line.Label)}</title></polyline>\n"));
        }

        if (lines.Count == 0)
        {
            Text(svg, Left + (plotW / 2), Top + (plotH / 2), "no operations timed", "middle");
        }

        Legend(svg, lines.Select(l => (l.Label, l.Color, l.Dashed)).ToList());
        return End(svg);
    }

    private static string ReproCommandModeName(ModeResult m) => Commands.ReproCommand.ModeName(m.Mode);

    private static StringBuilder Begin(string title)
    {
        var svg = new StringBuilder();
        svg.Append(Inv($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" {Font} font-size=\"12\">\n"));
        svg.Append(Inv($"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n"));
        Text(svg, Width / 2.0, 28, title, "middle", 15);
        return svg;
    }

    private static string End(StringBuilder svg) => svg.Append("</svg>\n").ToString();

    private static void Axes(StringBuilder svg, string xLabel, string yLabel)
    {
        int plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        svg.Append(Inv($"<line x1=\"{Left}\" y1=\"{Top + plotH}\" x2=\"{Left + plotW}\" y2=\"{Top + plotH}\" stroke=\"black\"/>\n"));
        svg.Append(Inv($"<line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{Top + plotH}\" stroke=\"black\"/>\n"));
        Text(svg, Left + (plotW / 2.0), Height - 24, xLabel, "middle", 13);
        svg.Append(Inv($"<text x=\"0\" y=\"0\" transform=\"translate(22 {Top + (plotH / 2.0):0.#}) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">{Esc(yLabel)}</text>\n"));
    }

    private static void GridLine(StringBuilder svg, double y) =>
        svg.Append(Inv($"<line x1=\"{Left}\" y1=\"{y:0.#}\" x2=\"{Width - Right}\" y2=\"{y:0.#}\" stroke=\"#ddd\"/>\n"));

    private static void Legend(StringBuilder svg, List<(string Label, string Color, bool Dashed)> entries)
    {
        double x = Width - Right + 20, y = Top + 10;
        Text(svg, x, y, "legend", "start", 12);
        for (int i = 0; i < entries.Count; i++)
        {
            double ly = y + 20 + (i * 20);
            svg.Append(Inv($"<line x1=\"{x:0.#}\" y1=\"{ly - 4:0.#}\" x2=\"{x + 28:0.#}\" y2=\"{ly - 4:0.#}\" stroke=\"{entries[i].Color}\" stroke-width=\"{(entries[i].Dashed ? 2 : 3)}\"{(entries[i].Dashed ? " stroke-dasharray=\"7 4\"" : "")}/>\n"));
            Text(svg, x + 36, ly, entries[i].Label, "start", 12);
        }
    }

    private static void Text(StringBuilder svg, double x, double y, string text, string anchor, int size = 12) =>
        svg.Append(Inv($"<text x=\"{x:0.#}\" y=\"{y:0.#}\" text-anchor=\"{anchor}\" font-size=\"{size}\">{Esc(text)}</text>\n"));

    // Round tick values from 0 to at least max: steps of 1, 2 or 5 times a power of ten, about five of them.
    private static double[] NiceTicks(double max)
    {
        double raw = max / 5, pow = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1, 2, 5, 10 }.Select(m => m * pow).First(s => s >= raw);
        int n = (int)Math.Ceiling(max / step);
        return Enumerable.Range(0, n + 1).Select(i => i * step).ToArray();
    }

    private static string Duration(double ns) => ns switch
    {
        >= 1e9 => Fmt(ns / 1e9, "0.###") + " s",
        >= 1e6 => Fmt(ns / 1e6, "0.###") + " ms",
        >= 1e3 => Fmt(ns / 1e3, "0.###") + " µs",
        _ => Fmt(ns, "0") + " ns",
    };

    private static string Color(string op) => s_opColors.GetValueOrDefault(op, "#7f7f7f");

    private static string Fmt(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string Esc(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
