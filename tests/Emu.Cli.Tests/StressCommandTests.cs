using System.Text.Json;

namespace Emu.Cli.Tests;

/// <summary>`emu stress`: exit codes, and a patched run on the RAM disk that finds no mismatch.</summary>
[TestFixture]
[NonParallelizable]
public sealed class StressCommandTests
{
    [Test]
    public void Patched_OnMemForTwoSeconds_ExitsZeroWithNoMismatches()
    {
        var r = CliHarness.Run("stress", "--mode", "patched", "--engine", "mem", "--runtime", "2", "--seed", "3", "--json");

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stdout + r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.That(root.GetProperty("seed").GetUInt64(), Is.EqualTo(3));
        Assert.That(root.GetProperty("mismatches").GetInt64(), Is.Zero);
        Assert.That(root.GetProperty("hangs").GetInt32(), Is.Zero);
        Assert.That(root.GetProperty("finalCheckDone").GetBoolean(), Is.True);
        Assert.That(root.GetProperty("ops").GetProperty("directRead").GetProperty("count").GetInt64(), Is.GreaterThan(0));
    }

    [Test]
    public void DeadlockSummary_CreditsAde770294df2_OnlyWhereItIsTheFix()
    {
        // v4.6 (patched) has the fix, so a deadlock there is another one; with O_DIRECT writers v4.6 can deadlock
        // too, so an unpatched deadlock is then not surely the one ade770294df2 fixed.
        Assert.That(Commands.StressCommand.FixNote(Emu.Btrfs.BtrfsMode.Unpatched, 0), Does.StartWith("the fix that would have avoided it: ade770294df2"));
        Assert.That(Commands.StressCommand.FixNote(Emu.Btrfs.BtrfsMode.Unpatched, 2), Does.Not.Contain("would have avoided"));
        Assert.That(Commands.StressCommand.FixNote(Emu.Btrfs.BtrfsMode.Patched, 2), Does.StartWith("not the deadlock ade770294df2 fixed"));
        Assert.That(Commands.StressCommand.FixNote(Emu.Btrfs.BtrfsMode.Patched, 0), Does.StartWith("not the deadlock ade770294df2 fixed"));
    }

    [Test]
    public void FileSizeNotAMultipleOf4k_IsAUsageError()
    {
        var r = CliHarness.Run("stress", "--file-size", "5000", "--engine", "mem");

        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("--file-size"));
        Assert.That(r.Stdout, Is.Empty);
    }

    [Test]
    public void BackingTooSmallForTheFiles_IsRefusedBeforeStarting()
    {
        string path = Path.Combine(CliHarness.ScratchDir(nameof(StressCommandTests)), "small.img");
        File.WriteAllBytes(path, new byte[1 << 20]);

        var r = CliHarness.Run("stress", "--files", "4", "--file-size", "1M", "--engine", "psync", "--backing", path, "--runtime", "1");

        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("too small"));
        Assert.That(new FileInfo(path).Length, Is.EqualTo(1 << 20));
    }

    [Test]
    public void Unpatched_StopsAtTheFirstDeadlock_WithExit1()
    {
        var (code, stdout, stderr) = ChildRunForTests("stress", "--mode", "unpatched", "--engine", "mem", "--runtime", "60", "--seed", "1", "--json");

        Assert.That(code, Is.EqualTo(1), stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.That(doc.RootElement.GetProperty("deadlocked").GetBoolean(), Is.True);
        Assert.That(doc.RootElement.GetProperty("runtimeMs").GetInt64(), Is.LessThan(60_000));
        Assert.That(doc.RootElement.GetProperty("deadlockReport")[0].GetString(), Does.StartWith("emu: deadlock detected"));
    }

    // An unpatched run leaves its deadlocked tasks (and their filesystem's sync) blocked: it runs in a child.
    private static (int, string, string) ChildRunForTests(params string[] args) => Emu.Cli.Commands.ChildRun.Run(args);
}
