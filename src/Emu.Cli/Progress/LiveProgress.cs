// Progress as a Spectre.Console live display: a bar with the status, elapsed time and a spinner, redrawn in
// place; it stays on screen when the work ends.
using Spectre.Console;

namespace Emu.Cli.Progress;

/// <summary>A Spectre.Console progress bar on the terminal.</summary>
internal sealed class LiveProgress : ProgressDisplay
{
    public override T Run<T>(string title, double total, string unit, Func<IProgressStep, T> body)
    {
        // A console bound to the current Console.Out, so the display follows Console.SetOut.
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        return console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask(Markup.Escape(title), maxValue: Math.Max(total, 1e-9));
                task.IsIndeterminate = total <= 0;
                T result = body(new Step(task, title));
                task.StopTask();
                return result;
            });
    }

    private sealed class Step(ProgressTask task, string title) : IProgressStep
    {
        public void Report(double done, string status)
        {
            task.Value = Math.Min(done, task.MaxValue);
            task.Description = Markup.Escape($"{title}: {status}");
        }
    }
}
