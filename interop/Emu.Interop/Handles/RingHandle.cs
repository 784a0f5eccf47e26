using Microsoft.Win32.SafeHandles;

namespace Emu.Interop;

/// <summary>An emu_ring (io_uring or psync queue); released with emu_ring_destroy, which waits for nothing.</summary>
public sealed class RingHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    internal RingHandle(nint ring)
        : base(ownsHandle: true) => SetHandle(ring);

    protected override bool ReleaseHandle() => EmuShim.emu_ring_destroy(handle) == 0;
}
