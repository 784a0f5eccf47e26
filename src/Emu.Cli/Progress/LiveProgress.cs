// Progress as a Spectre.Console live display: a bar with the status, elapsed time and a spinner, redrawn in
// place; it stays on screen when the work ends. A redraw moves the cursor up over the lines the display drew
// last, so anything else printed to the terminal meanwhile (the kernel log of `emu stress`, a warning) would
// be drawn over: such lines go through the display's console instead (Output, and Console.Error while the
// display runs if it is the same terminal), which prints them above the display and redraws it below them.
using Spectre.Console;

namespace Emu.Cli.Progress;

/// <summary>A Spectre.Console progress bar on the terminal.</summary>
internal sealed class LiveProgress : ProgressDisplay
{
    private readonly IAnsiConsole _console;
    private readonly bool _routeStderr;

    // A console bound to Console.Out as it is when the display is made, so the display follows Console.SetOut.
    public LiveProgress()
        : this(AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) }), routeStderr: !Console.IsErrorRedirected)
    {
    }

    /// <param name="console">The terminal to draw on.</param>
    /// <param name="routeStderr">Whether stderr is that terminal too, so that its lines must go above the display.</param>
    internal LiveProgress(IAnsiConsole console, bool routeStderr)
    {
        _console = console;
        _routeStderr = routeStderr;
        Output = new LiveLineWriter(console);
    }

    public override TextWriter Output { get; }

    public override T Run<T>(string title, double total, string unit, Func<IProgressStep, T> body)
    {
        TextWriter stderr = Console.Error;
        if (_routeStderr)
        {
            Console.SetError(Output);
        }

        try
        {
            return _console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    ProgressTask task = ctx.AddTask(Markup.Escape(title), maxValue: Math.Max(total, 1e-9));
                    task.IsIndeterminate = total <= 0;
                    T result = body(new Step(ctx, task, title));
                    task.StopTask();
                    return result;
                });
        }
        finally
        {
            if (_routeStderr)
            {
                Console.SetError(stderr);
            }
        }
    }

    // A report is drawn at once, not at the display's next tick.
    private sealed class Step(ProgressContext ctx, ProgressTask task, string title) : IProgressStep
    {
        public void Report(double done, string status)
        {
            task.Value = Math.Min(done, task.MaxValue);
            task.Description = Markup.Escape($"{title}: {status}");
            ctx.Refresh();
        }
    }
}
