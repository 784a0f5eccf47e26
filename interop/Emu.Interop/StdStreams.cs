// The process's standard output, pointed elsewhere for a while. A dump of emu's own process (`--dump-on-hang`)
// runs createdump, which prints its progress on the process's fd 1; a command printing --json must keep that
// descriptor for its result alone. libc's dup/dup2/close are called directly rather than through the shim:
// they are plain system calls the runtime's libc already provides, and the shim exists for what .NET lacks.
using System.Runtime.InteropServices;

namespace Emu.Interop;

/// <summary>Redirection of the process's standard output descriptor.</summary>
public static partial class StdStreams
{
    private const int StdoutFd = 1;
    private const int StderrFd = 2;

    /// <summary>
    /// Points fd 1 at what fd 2 is until the returned scope is disposed. Flush managed writers first: bytes they
    /// still buffer are written wherever fd 1 points when they flush. If the descriptors cannot be duplicated
    /// the scope does nothing.
    /// </summary>
    public static StdoutRedirect RedirectStdoutToStderr()
    {
        int saved = Dup(StdoutFd);
        bool redirected = saved >= 0 && Dup2(StderrFd, StdoutFd) >= 0;
        return new StdoutRedirect(saved, redirected);
    }

    internal static void Restore(int saved, bool redirected)
    {
        if (redirected)
        {
            Dup2(saved, StdoutFd);
        }

        if (saved >= 0)
        {
            Close(saved);
        }
    }

    [LibraryImport("libc", EntryPoint = "dup")]
    private static partial int Dup(int fd);

    [LibraryImport("libc", EntryPoint = "dup2")]
    private static partial int Dup2(int oldFd, int newFd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

/// <summary>A redirection of fd 1 made by <see cref="StdStreams.RedirectStdoutToStderr"/>; disposing it restores fd 1.</summary>
public sealed class StdoutRedirect : IDisposable
{
    private readonly int _saved;
    private readonly bool _redirected;
    private bool _disposed;

    internal StdoutRedirect(int saved, bool redirected)
    {
        _saved = saved;
        _redirected = redirected;
    }

    /// <summary>Restores fd 1 to where it pointed before.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        StdStreams.Restore(_saved, _redirected);
    }
}
