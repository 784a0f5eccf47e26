// A TextWriter whose lines are printed through a Spectre.Console console: while a live display runs on that
// console, they are printed above the display (which is then redrawn below them) instead of being drawn over by
// the display's next redraw. Before and after the display, they are printed as they are.
using System.Text;
using Spectre.Console;

namespace Emu.Cli.Progress;

/// <summary>Writes whole lines, as plain text, through a Spectre.Console console; thread-safe.</summary>
internal sealed class LiveLineWriter(IAnsiConsole console) : TextWriter
{
    private readonly StringBuilder _pending = new(); // lock (_pending): text written since the last complete line

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_pending)
        {
            AppendLocked(value);
            if (value == '\n')
            {
                WriteLinesLocked();
            }
        }
    }

    public override void Write(string? value)
    {
        lock (_pending)
        {
            foreach (char c in value.AsSpan())
            {
                AppendLocked(c);
            }

            WriteLinesLocked();
        }
    }

    public override void WriteLine(string? value)
    {
        lock (_pending)
        {
            foreach (char c in value.AsSpan())
            {
                AppendLocked(c);
            }

            _pending.Append('\n');
            WriteLinesLocked();
        }
    }

    public override void WriteLine() => Write('\n');

    private void AppendLocked(char c)
    {
        if (c != '\r')
        {
            _pending.Append(c);
        }
    }

    // The complete lines pending, in one write: a report of many lines costs one redraw of the display.
    private void WriteLinesLocked()
    {
        int end = _pending.Length;
        while (end > 0 && _pending[end - 1] != '\n')
        {
            end--;
        }

        if (end == 0)
        {
            return;
        }

        console.Write(new Text(_pending.ToString(0, end)));
        _pending.Remove(0, end);
    }
}
