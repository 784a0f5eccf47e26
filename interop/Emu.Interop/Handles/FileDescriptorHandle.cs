using Microsoft.Win32.SafeHandles;

namespace Emu.Interop;

/// <summary>A file descriptor from emu_blockdev_open; closed with emu_blockdev_close.</summary>
public sealed class FileDescriptorHandle : SafeHandleMinusOneIsInvalid
{
    internal FileDescriptorHandle(int fd)
        : base(ownsHandle: true) => SetHandle(fd);

    /// <summary>
    /// The raw descriptor, e.g. for <see cref="emu_io.fd"/>. Valid only while the handle stays open: callers that
    /// race with Dispose bracket the use with DangerousAddRef/DangerousRelease.
    /// </summary>
    public int DangerousGetFd() => (int)handle;

    protected override bool ReleaseHandle() => EmuShim.emu_blockdev_close((int)handle) == 0;
}
