using System.Text;
using Emu.Cli.Progress;
using Spectre.Console;

namespace Emu.Cli.Tests;

// The live progress bar of `emu stress` on a terminal, with the kernel log printing under it: every redraw
// moves the cursor up over the display's last frame, so a line printed straight to the terminal would be drawn
// over. The output is replayed on a small terminal model to see what stays on the screen.
public class LiveProgressTests
{
    [Test]
    public void KernelLines_PrintedWhileTheBarIsLive_StayOnScreenAboveIt()
    {
        var (console, output) = Terminal();
        var display = new LiveProgress(console, routeStderr: false);
        string[] report =
        [
            "[    0.274400] emu: deadlock detected: circular wait between 2 tasks",
            "[    0.274535]   fdm-stress:133 waits for page 7 of inode 258 held by fdm-stress:134",
            "[    0.274540]   fdm-stress:134 waits for extent range [12288, 16383] of inode 258 held by fdm-stress:133",
        ];

        display.Run("stress", 4, "s", step =>
        {
            step.Report(1, "running");
            display.Output.WriteLine("[    0.100000] BTRFS: device fsid 1 devid 1 transid 0 /dev/emu0 (unpatched)");
            step.Report(2, "running");
            display.Output.Write(string.Join('\n', report) + "\n");
            step.Report(4, "done");
        });

        List<string> screen = TerminalScreen.Replay(output.ToString());
        int bar = screen.FindIndex(l => l.StartsWith("stress: done", StringComparison.Ordinal));
        Assert.That(bar, Is.GreaterThanOrEqualTo(0), string.Join('\n', screen));
        Assert.That(screen.Take(bar).Where(l => l.Length > 0), Is.EqualTo(new[]
        {
            "[    0.100000] BTRFS: device fsid 1 devid 1 transid 0 /dev/emu0 (unpatched)",
            report[0], report[1], report[2],
        }), string.Join('\n', screen));
        Assert.That(screen.Count(l => l.StartsWith("stress", StringComparison.Ordinal)), Is.EqualTo(1), "one bar, redrawn in place");
    }

    [Test]
    public void PartialLines_WaitForTheirNewline()
    {
        var (console, output) = Terminal();
        var writer = new LiveLineWriter(console);

        writer.Write("[    1.000000] INFO: task ");
        string before = output.ToString();
        writer.Write("fdm-stress:137 blocked for more than 2 seconds.\r\n");

        Assert.That(before, Is.Empty);
        Assert.That(TerminalScreen.Replay(output.ToString())[0], Is.EqualTo("[    1.000000] INFO: task fdm-stress:137 blocked for more than 2 seconds."));
    }

    [Test]
    public void Stderr_IsRoutedAboveTheBarWhileItRuns_AndRestoredAfter()
    {
        var (console, output) = Terminal();
        var display = new LiveProgress(console, routeStderr: true);
        TextWriter stderr = Console.Error;

        display.Run("stress", 1, "s", step =>
        {
            Console.Error.WriteLine("emu: dumped to hang.dmp");
            step.Report(1, "done");
        });

        Assert.That(Console.Error, Is.SameAs(stderr));
        Assert.That(TerminalScreen.Replay(output.ToString()), Does.Contain("emu: dumped to hang.dmp"));
    }

    // A terminal as Spectre.Console sees one: ANSI, interactive (so the live renderer runs), wide enough that
    // nothing wraps.
    private static (IAnsiConsole Console, StringWriter Output) Terminal()
    {
        var output = new StringWriter(new StringBuilder());
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 200;
        console.Profile.Height = 50;
        return (console, output);
    }

    // What a VT100 shows after a stream of text and the escape sequences Spectre.Console's live display uses:
    // CR, LF, cursor up/down/forward/back/column, erase in line and in display; other sequences change nothing
    // on the screen (colours, cursor visibility).
    private static class TerminalScreen
    {
        public static List<string> Replay(string stream)
        {
            var rows = new List<StringBuilder> { new() };
            int row = 0, col = 0;
            for (int i = 0; i < stream.Length; i++)
            {
                char c = stream[i];
                if (c == '\u001b' && i + 1 < stream.Length && stream[i + 1] == '[')
                {
                    int j = i + 2;
                    while (j < stream.Length && (char.IsDigit(stream[j]) || stream[j] is ';' or '?'))
                    {
                        j++;
                    }

                    string args = stream[(i + 2)..j].TrimStart('?');
                    int n = int.TryParse(args.Split(';')[0], out int v) ? v : 0;
                    switch (stream[j])
                    {
                        case 'A': row = Math.Max(0, row - Math.Max(n, 1)); break;
                        case 'B': row += Math.Max(n, 1); break;
                        case 'C': col += Math.Max(n, 1); break;
                        case 'D': col = Math.Max(0, col - Math.Max(n, 1)); break;
                        case 'G': col = Math.Max(n, 1) - 1; break;
                        case 'K': EraseInLine(Row(rows, row), col, n); break;
                        case 'J':
                            if (n is 0) { EraseInLine(Row(rows, row), col, 0); rows.RemoveRange(row + 1, Math.Max(0, rows.Count - row - 1)); }
                            else { rows.Clear(); rows.Add(new StringBuilder()); }
                            break;
                    }

                    i = j;
                }
                else if (c == '\r')
                {
                    col = 0;
                }
                else if (c == '\n')
                {
                    row++;
                    col = 0;
                }
                else
                {
                    StringBuilder line = Row(rows, row);
                    if (line.Length <= col) line.Append(' ', col - line.Length + 1);
                    line[col++] = c;
                }
            }

            return rows.Select(r => r.ToString().TrimEnd()).ToList();
        }

        private static StringBuilder Row(List<StringBuilder> rows, int row)
        {
            while (rows.Count <= row) rows.Add(new StringBuilder());
            return rows[row];
        }

        private static void EraseInLine(StringBuilder line, int col, int mode)
        {
            int from = mode == 0 ? col : 0;
            int to = mode == 1 ? Math.Min(col + 1, line.Length) : line.Length;
            for (int k = from; k < to; k++) line[k] = ' ';
        }
    }
}
