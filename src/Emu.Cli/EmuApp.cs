using System.CommandLine;
using Emu.Cli.Commands;

namespace Emu.Cli;

/// <summary>The `emu` command tree. Exit codes (architecture.md): 0 success, 1 a deadlock or data mismatch
/// was detected, 2 bad usage.</summary>
public static class EmuApp
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("Emu: the btrfs DIO-read vs buffered-write deadlock (fixed in Linux 4.6), emulated in user space with real threads and real O_DIRECT I/O.");
        root.Subcommands.Add(TopologyCommand.Create());
        root.Subcommands.Add(BlkCommand.Create());
        root.Subcommands.Add(WqCommand.Create());
        root.Subcommands.Add(ReproCommand.Create());
        root.Subcommands.Add(StressCommand.Create());
        root.Subcommands.Add(DiagnoseCommand.Create());
        root.Subcommands.Add(CompareCommand.Create());
        return CommandRunner.Run(root, args);
    }
}
