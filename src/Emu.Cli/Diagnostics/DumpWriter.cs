// Process dumps through the runtime's diagnostics port (DiagnosticsClient.WriteDump, what dotnet-dump collect
// does): the target's runtime runs createdump on itself, so the path is resolved here and handed over whole.
// Used by `emu diagnose PID --dump PATH`, and by `emu stress|repro --dump-on-hang PATH` on their own process.
using Emu.Interop;
using Microsoft.Diagnostics.NETCore.Client;

namespace Emu.Cli.Diagnostics;

/// <summary>Writes a dump of a live .NET process.</summary>
internal static class DumpWriter
{
    /// <summary>
    /// Checks <paramref name="path"/> before anything is written: an existing file is refused without
    /// <paramref name="force"/>, and its folder must exist. Returns the full path.
    /// </summary>
    /// <exception cref="UsageException">The path is refused.</exception>
    public static string CheckPath(string path, bool force, string option)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new UsageException($"{option} {path} is a directory; name the dump file to write");
        }

        if (File.Exists(full) && !force)
        {
            throw new UsageException($"{option} {path} already exists; remove it or add --force to overwrite it");
        }

        string? dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir))
        {
            throw new UsageException($"{option} {path}: the folder {dir} does not exist");
        }

        return full;
    }

    /// <summary>Writes a dump of process <paramref name="pid"/> with its managed heap (or everything, <paramref name="full"/>) to <paramref name="fullPath"/>.</summary>
    /// <returns>The dump's size in bytes.</returns>
    public static long Write(int pid, string fullPath, bool full)
    {
        if (File.Exists(fullPath))
        {
            File.Delete(fullPath);
        }

        new DiagnosticsClient(pid).WriteDump(full ? DumpType.Full : DumpType.WithHeap, fullPath, logDumpGeneration: false);
        return new FileInfo(fullPath).Length;
    }

    /// <summary>
    /// Writes a dump of this process, as <see cref="Write"/>. createdump inherits the process's stdout and prints
    /// its progress there; stdout is pointed at stderr meanwhile, so a --json result stays the only thing on it
    /// (other threads' console output during those seconds goes to stderr too).
    /// </summary>
    public static long WriteSelf(string fullPath)
    {
        Console.Out.Flush();
        using StdoutRedirect redirect = StdStreams.RedirectStdoutToStderr();
        return Write(Environment.ProcessId, fullPath, full: false);
    }

    /// <summary>
    /// --dump-on-hang: a workload's OnHang callback that dumps this process to <paramref name="fullPath"/> (checked
    /// with <see cref="CheckPath"/>) and prints "dump written: PATH (N MiB)" on stderr; null for no path. The
    /// workload calls it once, while the blocked tasks still sleep where they stuck.
    /// </summary>
    public static Action<string>? OnHang(string? fullPath) => fullPath is null ? null : what =>
    {
        try
        {
            Console.Error.WriteLine($"emu: {what}: " + Written(fullPath, WriteSelf(fullPath)));
        }
        catch (Exception e) when (e is DiagnosticsClientException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"emu: warning: --dump-on-hang: no dump written to {fullPath}: {e.Message.ReplaceLineEndings(" ")}");
        }
    };

    /// <summary>"dump written: PATH (N MiB)".</summary>
    public static string Written(string fullPath, long bytes) => $"dump written: {fullPath} ({bytes / (1024.0 * 1024.0):0} MiB)";
}
