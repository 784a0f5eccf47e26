using Microsoft.Win32.SafeHandles;

namespace Emu.Interop;

/// <summary>A block from emu_mem_alloc; released with emu_mem_free and the size it was allocated with.</summary>
public sealed unsafe class NativeMemoryHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    internal NativeMemoryHandle(nint pointer, ulong size)
        : base(ownsHandle: true)
    {
        SetHandle(pointer);
        Size = size;
    }

    /// <summary>The size passed to emu_mem_alloc (the shim rounds the block up to 4 KiB internally).</summary>
    public ulong Size { get; }

    protected override bool ReleaseHandle() => EmuShim.emu_mem_free((void*)handle, Size) == 0;
}
