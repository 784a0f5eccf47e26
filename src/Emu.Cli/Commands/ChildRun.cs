// Child emu processes: `repro --mode both`, `--repeat` and `compare` run each run in its own process, because an
// unpatched run that deadlocks keeps its tasks blocked until its process exits.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Emu.Btrfs;

namespace Emu.Cli.Commands;

/// <summary>Runs `emu` in a child process (the binary running now, or emu.dll beside this assembly).</summary>
internal static class ChildRun
{
    public static JsonElement Repro(BtrfsMode mode, IEnumerable<string> args)
    {
        var all = new List<string> { "repro", "--mode", ReproCommand.ModeName(mode) };
        all.AddRange(args);
        return Json(all, Timeout.InfiniteTimeSpan).Result;
    }

    /// <summary>
    /// Runs `emu ARGS` (which must print one JSON object) and returns the object. A child that exits 2 was
    /// refused its input: its one line becomes a <see cref="UsageException"/>. A child still running after
    /// timeout is killed and reported. Returns the child's exit status with the object.
    /// </summary>
    public static (int Code, JsonElement Result) Json(IReadOnlyList<string> args, TimeSpan timeout)
    {
        var (code, stdout, stderr) = Run(args, timeout);
        if (code == CommandRunner.ExitUsage)
            throw new UsageException(FirstLine(stderr).StartsWith("emu: ", StringComparison.Ordinal) ? FirstLine(stderr)[5..] : FirstLine(stderr));
        try
        {
            using var doc = JsonDocument.Parse(stdout);
            return (code, doc.RootElement.Clone());
        }
        catch (JsonException)
        {
            throw new InvalidOperationException($"the child `emu {string.Join(' ', args)}` exited {code} without a result: {FirstLine(stderr)}");
        }
    }

    public static (int Code, string Stdout, string Stderr) Run(IReadOnlyList<string> args) => Run(args, Timeout.InfiniteTimeSpan);

    public static (int Code, string Stdout, string Stderr) Run(IReadOnlyList<string> args, TimeSpan timeout)
    {
        var psi = StartInfo();
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        var stderr = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (stderr) stderr.AppendLine(e.Data);
        };
        if (!p.Start()) throw new InvalidOperationException("cannot start a child emu process");
        p.BeginErrorReadLine();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new InvalidOperationException($"the child `emu {string.Join(' ', args)}` did not finish within {timeout.TotalSeconds:0} s and was killed");
        }
        p.WaitForExit();
        lock (stderr) return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.ToString());
    }

    /// <summary>How to start `emu`: this binary when it is emu, else emu.dll beside this assembly under the dotnet host.</summary>
    internal static ProcessStartInfo StartInfo()
    {
        string? self = Environment.ProcessPath;
        if (self is not null && Path.GetFileName(self) == "emu")
            return new ProcessStartInfo(self);
        string dll = Path.Combine(AppContext.BaseDirectory, "emu.dll");
        if (!File.Exists(dll))
            throw new InvalidOperationException($"cannot find emu to run child processes (looked for {dll})");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
            : self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
        var psi = new ProcessStartInfo(dotnet);
        psi.ArgumentList.Add("exec");
        string runtimeConfig = Path.Combine(AppContext.BaseDirectory, "emu.runtimeconfig.json");
        if (File.Exists(runtimeConfig))
        {
            psi.ArgumentList.Add("--runtimeconfig");
            psi.ArgumentList.Add(runtimeConfig);
        }
        psi.ArgumentList.Add(dll);
        return psi;
    }

    private static string FirstLine(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "(no output)";
}
