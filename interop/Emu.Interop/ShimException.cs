namespace Emu.Interop;

/// <summary>A shim call failed. The message is one line: what was done, strerror, and the errno.</summary>
/// <param name="errno">The positive errno (the shim returned its negation).</param>
/// <param name="what">What was being done, e.g. "emu_topology_open" or "emu_blockdev_open /dev/sdb".</param>
public sealed class ShimException(int errno, string what)
    : Exception($"{what}: {Interop.Errno.Message(errno)} (errno {errno})")
{
    /// <summary>The positive errno, e.g. <see cref="Interop.Errno.ENOENT"/>.</summary>
    public int Errno { get; } = errno;

    public string What { get; } = what;
}
