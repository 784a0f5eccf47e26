// Progress of a long command, shown three ways: a Spectre.Console live display when stdout is a terminal,
// plain lines when it is redirected (a log or CI keeps every line, without escape sequences), and nothing
// with --quiet or --json (stdout then carries only the result).
using System.Diagnostics;

namespace Emu.Cli.Progress;

/// <summary>One piece of work being shown: how far it got and what it is doing now.</summary>
internal interface IProgressStep
{
    /// <summary>Sets the amount done (in the units of the total) and a short status.</summary>
    void Report(double done, string status);
}

/// <summary>Shows the progress of one long piece of work.</summary>
internal abstract class ProgressDisplay
{
    /// <summary>The display for a command's output: nothing when quiet, live on a terminal, else plain lines.</summary>
    public static ProgressDisplay For(bool quiet) =>
        quiet ? Silent.Instance : Console.IsOutputRedirected ? new PlainProgress(Console.Out) : new LiveProgress();

    /// <summary>
    /// Runs body while showing its progress toward total; unit names the unit of done and total ("s" for
    /// seconds, "" for a count).
    /// </summary>
    public abstract T Run<T>(string title, double total, string unit, Func<IProgressStep, T> body);

    /// <summary>
    /// Where a command prints lines while the display may be running (the kernel console): on a terminal they
    /// appear above a live display instead of being drawn over by it.
    /// </summary>
    public virtual TextWriter Output => Console.Out;

    /// <summary>Runs body while showing its progress toward total.</summary>
    public void Run(string title, double total, string unit, Action<IProgressStep> body) =>
        Run(title, total, unit, step =>
        {
            body(step);
            return true;
        });

    /// <summary>
    /// Runs body, which cannot report, showing that it started and then the time elapsed once per second
    /// against the time it is expected to take (null: unknown).
    /// </summary>
    public T RunTimed<T>(string title, TimeSpan? expected, Func<T> body) =>
        Run(title, expected?.TotalSeconds ?? 0, "s", step =>
        {
            step.Report(0, "running");
            var clock = Stopwatch.StartNew();
            var timer = new Timer(_ => step.Report(Math.Round(clock.Elapsed.TotalSeconds), "running"), null, 1000, 1000);
            try
            {
                return body();
            }
            finally
            {
                // Wait for a tick in flight, so that no progress line follows the result.
                using var stopped = new ManualResetEvent(false);
                if (timer.Dispose(stopped)) stopped.WaitOne();
            }
        });

    private sealed class Silent : ProgressDisplay, IProgressStep
    {
        public static readonly Silent Instance = new();

        public override T Run<T>(string title, double total, string unit, Func<IProgressStep, T> body) => body(this);

        public void Report(double done, string status)
        {
        }
    }
}
