using Microsoft.Win32.SafeHandles;

namespace Emu.Interop;

/// <summary>An emu_topology snapshot; released with emu_topology_close.</summary>
public sealed class TopologyHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    internal TopologyHandle(nint topology)
        : base(ownsHandle: true) => SetHandle(topology);

    protected override bool ReleaseHandle() => EmuShim.emu_topology_close(handle) == 0;
}
