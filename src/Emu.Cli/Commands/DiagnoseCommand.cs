// `emu diagnose`: the outside view of an emu process, for when a run hangs or crawls. --counters is
// dotnet-counters for the Emu meters, --dump is dotnet-dump collect, --stacks is what `dotnet-dump analyze`
// plus clrstack would show, with each blocked thread named as the emulated task it runs and its kernel trace.
// A PID must name a running emu process that publishes the .NET diagnostics port; anything else is a usage
// error (exit 2) before a session or a dump is attempted.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Emu.Cli.Diagnostics;
using Microsoft.Diagnostics.NETCore.Client;

namespace Emu.Cli.Commands;

/// <summary>
/// `emu diagnose`: looks into a running emu process from outside - its Emu meters live (--counters), a dump of
/// it (--dump) - and into a dump afterwards (--stacks: each blocked task's kernel trace beside its managed stack).
/// </summary>
internal static class DiagnoseCommand
{
    public static Command Create()
    {
        var pid = new Argument<string?>("PID") { Description = "The emu process to look at (for --counters and --dump).", Arity = ArgumentArity.ZeroOrOne };
        var counters = new Option<bool>("--counters") { Description = "Show the Emu.Block, Emu.Workqueue, Emu.Btrfs and Emu.Sched meters of PID live, as dotnet-counters would." };
        var interval = new Option<string>("--interval") { Description = "With --counters: how often the values refresh (seconds, or 500ms).", DefaultValueFactory = _ => "1s" };
        var duration = new Option<string>("--duration") { Description = "With --counters: how long to watch (seconds, or 1m).", DefaultValueFactory = _ => "10s" };
        var json = new Option<bool>("--json") { Description = "With --counters: one JSON object per interval instead of a table." };
        var dump = new Option<string?>("--dump") { Description = "Write a dump of PID (with its managed heap) to this file." };
        var full = new Option<bool>("--full") { Description = "With --dump: a full dump (all memory) instead of one with the managed heap." };
        var force = new Option<bool>("--force") { Description = "With --dump: overwrite an existing file." };
        var stacks = new Option<string?>("--stacks") { Description = "Read this dump and print every blocked (D) emulated task: its kernel call trace and its thread's managed stack." };
        var command = new Command("diagnose",
            "Look into an emu process: its Emu meters live (--counters), a dump of it (--dump PATH), or the blocked tasks of a dump (--stacks DUMP).")
        {
            pid, counters, interval, duration, json, dump, full, force, stacks,
        };
        command.SetAction(p => Execute(p.GetValue(pid), p.GetValue(counters), p.GetValue(interval)!, p.GetValue(duration)!, p.GetValue(json),
            p.GetValue(dump), p.GetValue(full), p.GetValue(force), p.GetValue(stacks)));
        return command;
    }

    private static int Execute(string? pidText, bool counters, string intervalText, string durationText, bool json, string? dumpPath, bool full, bool force, string? stacksPath)
    {
        int modes = (counters ? 1 : 0) + (dumpPath is not null ? 1 : 0) + (stacksPath is not null ? 1 : 0);
        if (modes != 1)
        {
            throw new UsageException("say what to do: one of PID --counters, PID --dump PATH or --stacks DUMP");
        }

        if (stacksPath is not null)
        {
            if (pidText is not null) throw new UsageException("--stacks reads a dump file and takes no PID; drop the PID");
            return Stacks(stacksPath);
        }

        if (pidText is null) throw new UsageException($"{(counters ? "--counters" : "--dump")} needs the PID of a running emu process (e.g. emu diagnose 1234 {(counters ? "--counters" : "--dump emu.dmp")})");
        if (dumpPath is not null)
        {
            string fullPath = DumpWriter.CheckPath(dumpPath, force, "--dump");
            int target = CheckTarget(pidText);
            long bytes = DumpWriter.Write(target, fullPath, full);
            Console.WriteLine(DumpWriter.Written(fullPath, bytes));
            return CommandRunner.ExitOk;
        }

        long intervalMs = WorkloadOptions.ParseDuration(intervalText, "--interval");
        long durationMs = WorkloadOptions.ParseDuration(durationText, "--duration");
        if (intervalMs < 100) throw new UsageException($"--interval {intervalText} is too short; use at least 100ms");
        if (durationMs < intervalMs) throw new UsageException($"--duration {durationText} is shorter than --interval {intervalText}; watch for at least one interval");
        return Counters(CheckTarget(pidText), TimeSpan.FromMilliseconds(intervalMs), TimeSpan.FromMilliseconds(durationMs), json);
    }

    // A PID of a live process that publishes a .NET diagnostics port; else a usage error.
    private static int CheckTarget(string pidText)
    {
        if (!int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid <= 0)
        {
            throw new UsageException($"PID '{pidText}' is not a process id; pass the number of a running emu process (e.g. from pgrep -f emu)");
        }

        string name;
        try
        {
            using var process = Process.GetProcessById(pid);
            name = process.ProcessName;
        }
        catch (ArgumentException)
        {
            throw new UsageException($"no process with PID {pid} is running");
        }

        if (!DiagnosticsClient.GetPublishedProcesses().Contains(pid))
        {
            throw new UsageException($"process {pid} ({name}) has no .NET diagnostics port: it is not an emu process, or runs with DOTNET_EnableDiagnostics=0");
        }

        // emu runs as the emu binary or as `dotnet emu.dll`: one of its arguments names it.
        string cmdline = $"/proc/{pid}/cmdline";
        if (File.Exists(cmdline))
        {
            string[] args = File.ReadAllText(cmdline).Split('\0', StringSplitOptions.RemoveEmptyEntries);
            if (!args.Any(a => Path.GetFileName(a) is "emu" or "emu.dll"))
            {
                throw new UsageException($"process {pid} ({name}) is a .NET process but not emu; pass the PID of a running emu stress or emu repro");
            }
        }

        return pid;
    }

    private static int Counters(int pid, TimeSpan interval, TimeSpan duration, bool json)
    {
        bool redraw = !json && !Console.IsOutputRedirected;
        if (!json)
        {
            Console.WriteLine($"emu diagnose: process {pid}, meters {string.Join(", ", CounterMonitor.Meters)}, every {interval.TotalSeconds:0.###}s for {duration.TotalSeconds:0.###}s");
            Console.Out.Flush();
        }

        var monitor = new CounterMonitor(pid, interval, duration);
        int reported = 0;
        try
        {
            monitor.Run((elapsed, values) =>
            {
                reported += values.Count;
                if (json)
                {
                    Console.WriteLine(CounterMonitor.ToJson(elapsed, values));
                }
                else
                {
                    if (redraw)
                    {
                        Console.Write("\x1b[H\x1b[J");
                    }

                    CounterMonitor.WriteTable(Console.Out, elapsed, values);
                    if (!redraw)
                    {
                        Console.WriteLine();
                    }
                }

                Console.Out.Flush();
            });
        }
        catch (ServerNotAvailableException e)
        {
            throw new UsageException($"process {pid} closed its diagnostics port ({e.Message.ReplaceLineEndings(" ")}); is it still running?");
        }

        if (monitor.Error is { } error)
        {
            Console.Error.WriteLine($"emu: warning: process {pid} reported: {error.ReplaceLineEndings(" ")}");
        }

        if (reported == 0)
        {
            Console.Error.WriteLine($"emu: process {pid} reported no Emu meter values: is it an emu process running a workload (emu stress, emu repro)?");
            return CommandRunner.ExitDetected;
        }

        return CommandRunner.ExitOk;
    }

    private static int Stacks(string dumpPath)
    {
        if (!File.Exists(dumpPath))
        {
            throw new UsageException($"--stacks {dumpPath}: no such file; write a dump first with emu diagnose PID --dump PATH");
        }

        List<DumpedTask> tasks = DumpStacks.Read(dumpPath);
        if (tasks.Count == 0)
        {
            throw new UsageException($"--stacks {dumpPath}: the dump holds no emulated tasks; is it a dump of an emu process?");
        }

        int blocked = DumpStacks.Write(Console.Out, tasks);
        Console.WriteLine($"{blocked} of {tasks.Count} emulated tasks blocked (D)");
        return CommandRunner.ExitOk;
    }
}
