using System.Diagnostics;
using System.Text.Json;
using Microsoft.Diagnostics.NETCore.Client;

namespace Emu.Cli.Tests;

/// <summary>
/// `emu diagnose`: bad input is one line and exit 2; against a live `emu stress` child it reads the Emu meters
/// over EventPipe; `emu stress --dump-on-hang` dumps an unpatched run at its deadlock, and `--stacks` names the
/// blocked tasks with the kernel frames they sleep in.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DiagnoseCommandTests
{
    [Test]
    public void Pid_NotANumber_IsAUsageError()
    {
        var r = CliHarness.Run("diagnose", "abc", "--counters");

        AssertUsageError(r, "PID 'abc' is not a process id");
    }

    [Test]
    public void Pid_OfAProcessThatExited_IsAUsageError()
    {
        using var gone = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        gone.WaitForExit();

        var r = CliHarness.Run("diagnose", gone.Id.ToString(), "--counters");

        AssertUsageError(r, $"no process with PID {gone.Id} is running");
    }

    [Test]
    public void Pid_OfAProcessWithoutADiagnosticsPort_IsAUsageError()
    {
        using var sleeper = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        try
        {
            var r = CliHarness.Run("diagnose", sleeper.Id.ToString(), "--counters", "--duration", "1s");

            AssertUsageError(r, "has no .NET diagnostics port");
        }
        finally
        {
            sleeper.Kill();
            sleeper.WaitForExit();
        }
    }

    [Test]
    public void Pid_OfADotnetProcessThatIsNotEmu_IsAUsageError()
    {
        var r = CliHarness.Run("diagnose", Environment.ProcessId.ToString(), "--counters", "--duration", "1s");

        AssertUsageError(r, "is a .NET process but not emu");
    }

    [Test]
    public void Stacks_OfAMissingDump_IsAUsageError()
    {
        string missing = Path.Combine(CliHarness.ScratchDir(nameof(DiagnoseCommandTests)), "missing.dmp");
        File.Delete(missing);

        var r = CliHarness.Run("diagnose", "--stacks", missing);

        AssertUsageError(r, "no such file");
    }

    [Test]
    public void Dump_ToAnExistingFile_IsRefusedWithoutForce_AndLeavesItAlone()
    {
        string path = Path.Combine(CliHarness.ScratchDir(nameof(DiagnoseCommandTests)), "existing.dmp");
        File.WriteAllText(path, "keep me");
        try
        {
            var r = CliHarness.Run("diagnose", Environment.ProcessId.ToString(), "--dump", path);

            AssertUsageError(r, "already exists");
            Assert.That(File.ReadAllText(path), Is.EqualTo("keep me"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void Counters_OfARunningPatchedStress_ShowEmuBlockAndEmuBtrfsValues()
    {
        using Process child = StartEmu("stress", "--mode", "patched", "--engine", "mem", "--runtime", "30", "--seed", "3", "--quiet");
        try
        {
            Assert.That(child.StandardOutput.ReadLine(), Does.StartWith("emu stress:"));
            WaitForDiagnosticsPort(child.Id);
            WaitForMeter(child.Id, "Emu.Btrfs");

            var r = CliHarness.Run("diagnose", child.Id.ToString(), "--counters", "--duration", "3s", "--json");

            Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
            var values = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .SelectMany(line => JsonDocument.Parse(line).RootElement.Clone().GetProperty("values").EnumerateArray())
                .ToList();
            Assert.That(values, Has.Some.Matches<JsonElement>(v => IsInstrument(v, "Emu.Block", "emu.block.ios") && Value(v) > 0));
            Assert.That(values, Has.Some.Matches<JsonElement>(v => IsInstrument(v, "Emu.Btrfs", "emu.btrfs.pages_written") && Value(v) > 0));
            Assert.That(values, Has.Some.Matches<JsonElement>(v => IsInstrument(v, "Emu.Btrfs", "emu.btrfs.buffered_writes") && Value(v) > 0));
            Assert.That(values, Has.Some.Matches<JsonElement>(v => IsInstrument(v, "Emu.Workqueue", "emu.wq.work_completed") && Value(v) > 0));
            Assert.That(values, Has.Some.Matches<JsonElement>(v => IsInstrument(v, "Emu.Sched", "emu.sched.tasks")));
        }
        finally
        {
            child.Kill();
            child.WaitForExit();
        }
    }

    [Test]
    public void DumpOnHang_OfAnUnpatchedStress_WritesADumpWhoseStacksShowTheBlockedTasksKernelFrames()
    {
        string dump = Path.Combine(CliHarness.ScratchDir(nameof(DiagnoseCommandTests)), "hang.dmp");
        File.Delete(dump);
        try
        {
            // An unpatched run leaves its deadlocked tasks blocked: it runs in a child, dumping itself at the deadlock.
            var (code, stdout, stderr) = Emu.Cli.Commands.ChildRun.Run(
                ["stress", "--mode", "unpatched", "--engine", "mem", "--runtime", "60", "--seed", "1", "--json", "--dump-on-hang", dump]);

            Assert.That(code, Is.EqualTo(1), stderr);
            Assert.That(JsonDocument.Parse(stdout).RootElement.GetProperty("deadlocked").GetBoolean(), Is.True);
            Assert.That(stderr, Does.Contain($"dump written: {dump} ("));
            Assert.That(File.Exists(dump), Is.True);

            var r = CliHarness.Run("diagnose", "--stacks", dump);

            Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
            Assert.That(r.Stdout, Does.Match(@"(?m)^(fdm-stress|kworker/\S+):\d+ \(D\) os tid \d+$"));
            var kernelFrames = KernelFrames(r.Stdout);
            Assert.That(kernelFrames, Has.Some.Matches<string>(f => f is "lock_extent_bits" or "__lock_page" or "lock_page"), r.Stdout);
            Assert.That(r.Stdout, Does.Contain("Emu.Kernel.Sched.Schedule"), "the managed stack of a blocked task goes through schedule()");
        }
        finally
        {
            File.Delete(dump);
        }
    }

    private static void AssertUsageError(CliHarness.Result r, string expected)
    {
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
        Assert.That(r.StderrLines, Has.Length.EqualTo(1), r.Stderr);
        Assert.That(r.Stderr, Does.Contain(expected));
        Assert.That(r.Stdout, Is.Empty);
    }

    private static bool IsInstrument(JsonElement v, string meter, string name) =>
        v.GetProperty("meter").GetString() == meter && v.GetProperty("name").GetString() == name;

    private static double Value(JsonElement v) =>
        v.GetProperty("value").ValueKind == JsonValueKind.Number ? v.GetProperty("value").GetDouble() : 0;

    // The lines under "  kernel:" of every task.
    private static List<string> KernelFrames(string stacks)
    {
        var frames = new List<string>();
        bool inKernel = false;
        foreach (string line in stacks.Split('\n'))
        {
            if (line.StartsWith("  ", StringComparison.Ordinal) && !line.StartsWith("    ", StringComparison.Ordinal))
            {
                inKernel = line.Trim() == "kernel:";
            }
            else if (inKernel && line.StartsWith("    ", StringComparison.Ordinal))
            {
                frames.Add(line.Trim());
            }
        }

        return frames;
    }

    // emu as a child process, started as ChildRun starts its runs.
    private static Process StartEmu(params string[] args)
    {
        ProcessStartInfo psi = Emu.Cli.Commands.ChildRun.StartInfo();
        psi.UseShellExecute = false;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        p.ErrorDataReceived += static (_, _) => { };
        p.BeginErrorReadLine();
        return p;
    }

    // The header comes before the filesystem is mounted, and the Emu.Btrfs instruments appear with the mount:
    // short sessions until they show, so the measured one sees the workload running whatever the start-up took.
    private static void WaitForMeter(int pid, string meter)
    {
        var deadline = Stopwatch.StartNew();
        while (!CliHarness.Run("diagnose", pid.ToString(), "--counters", "--duration", "500ms", "--interval", "250ms", "--json").Stdout.Contains($"\"meter\":\"{meter}\""))
        {
            Assert.That(deadline.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), $"process {pid} never reported {meter}");
        }
    }

    private static void WaitForDiagnosticsPort(int pid)
    {
        var deadline = Stopwatch.StartNew();
        while (!DiagnosticsClient.GetPublishedProcesses().Contains(pid))
        {
            Assert.That(deadline.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), $"process {pid} never opened its diagnostics port");
            Thread.Sleep(50);
        }
    }
}
