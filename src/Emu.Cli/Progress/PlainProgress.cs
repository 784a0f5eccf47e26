// Progress as plain lines, one per report, for output that is not a terminal.
using System.Globalization;

namespace Emu.Cli.Progress;

/// <summary>Prints "title [done/total] status" (or "title [done] status" when the total is unknown) for every report.</summary>
internal sealed class PlainProgress(TextWriter output) : ProgressDisplay
{
    public override T Run<T>(string title, double total, string unit, Func<IProgressStep, T> body) =>
        body(new Step(output, title, total, unit));

    private sealed class Step(TextWriter output, string title, double total, string unit) : IProgressStep
    {
        public void Report(double done, string status)
        {
            output.WriteLine(total > 0
                ? string.Create(CultureInfo.InvariantCulture, $"{title} [{done:0.##}{unit}/{total:0.##}{unit}] {status}")
                : string.Create(CultureInfo.InvariantCulture, $"{title} [{done:0.##}{unit}] {status}"));
            output.Flush();
        }
    }
}
