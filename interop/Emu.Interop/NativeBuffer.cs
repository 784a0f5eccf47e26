namespace Emu.Interop;

/// <summary>
/// Zeroed, 4 KiB-aligned native memory from emu_mem_alloc, node-local when the machine has several NUMA nodes:
/// page-cache pages and O_DIRECT buffers. Freed on Dispose (or by the handle's finalizer).
/// </summary>
public sealed unsafe class NativeBuffer : IDisposable
{
    /// <summary>Alignment of every buffer: one page, and at least what O_DIRECT asks of memory.</summary>
    public const int Alignment = 4096;

    private readonly nint _pointer; // I: set at allocation; valid until Handle is closed

    private NativeBuffer(NativeMemoryHandle handle, long length)
    {
        Handle = handle;
        Length = length;
        _pointer = handle.DangerousGetHandle();
    }

    public NativeMemoryHandle Handle { get; }

    /// <summary>Usable bytes: the size asked for (the block behind it is rounded up to 4 KiB).</summary>
    public long Length { get; }

    /// <summary>Start address, <see cref="Alignment"/>-aligned.</summary>
    /// <exception cref="ObjectDisposedException">After Dispose.</exception>
    public nint Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
            return _pointer;
        }
    }

    /// <summary>The whole buffer; only for buffers of at most int.MaxValue bytes.</summary>
    /// <exception cref="ObjectDisposedException">After Dispose.</exception>
    public Span<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
            if (Length > int.MaxValue)
                throw new InvalidOperationException($"a {Length}-byte buffer does not fit in a Span<byte>");
            return new Span<byte>((void*)_pointer, (int)Length);
        }
    }

    /// <summary>Allocates <paramref name="size"/> bytes on NUMA node <paramref name="node"/> (-1: no preference).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not positive.</exception>
    /// <exception cref="ShimException">ENOMEM; EINVAL when <paramref name="node"/> has no memory (multi-node machines only).</exception>
    public static NativeBuffer Allocate(long size, int node = -1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        void* pointer;
        Errno.ThrowIfError(EmuShim.emu_mem_alloc((ulong)size, node, &pointer), "emu_mem_alloc");
        return new NativeBuffer(new NativeMemoryHandle((nint)pointer, (ulong)size), size);
    }

    public void Dispose() => Handle.Dispose();
}
