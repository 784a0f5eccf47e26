using Emu.Cli;

namespace Emu.Cli.Tests;

/// <summary>Runs `emu` in-process with captured output. Console is process-global, so CLI tests never run in parallel.</summary>
internal static class CliHarness
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public static Result Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var oldOut = Console.Out;
        var oldErr = Console.Error;
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = EmuApp.Run(args);
            return new Result(code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Emu.sln"))) return d.FullName;
            throw new InvalidOperationException("Emu.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>A scratch folder on the repository's disk (O_DIRECT works there, unlike on tmpfs).</summary>
    public static string ScratchDir(string name)
    {
        var dir = Path.Combine(RepoRoot, "artifacts", "test-scratch", name);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
