// The backing store of an emulated block device (blockdev.c): a regular file or a real block device opened
// with O_DIRECT, with the alignment rules its I/O must follow.
using System.Text;

namespace Emu.Interop;

/// <summary>How <see cref="BlockDevice.Open"/> treats the path; values are emu_open_flags.</summary>
[Flags]
public enum BlockDeviceOpenFlags
{
    None = 0,
    Create = (int)emu_open_flags.EMU_OPEN_CREATE,       // EMU_OPEN_CREATE: make a file of `size` bytes if missing
    ReadOnly = (int)emu_open_flags.EMU_OPEN_READONLY,   // EMU_OPEN_READONLY: O_RDONLY instead of O_RDWR
    Grow = (int)emu_open_flags.EMU_OPEN_GROW,           // EMU_OPEN_GROW: extend an existing file shorter than `size`
    Buffered = (int)emu_open_flags.EMU_OPEN_BUFFERED,   // EMU_OPEN_BUFFERED: no O_DIRECT (fio --direct=0)
}

/// <summary>An open backing file or block device and what emu_blockdev_open learned about it.</summary>
public sealed class BlockDevice : IDisposable
{
    private BlockDevice(string path, FileDescriptorHandle handle, in emu_blockdev_info info)
    {
        Path = path;
        Handle = handle;
        SizeBytes = info.size_bytes;
        LogicalBlockSize = info.logical_block_size;
        PhysicalBlockSize = info.physical_block_size;
        DioMemAlign = info.dio_mem_align;
        DioOffsetAlign = info.dio_offset_align;
        IsBlockDevice = info.is_block_device != 0;
        Created = info.created != 0;
        FsMagic = info.fs_magic;
    }

    private const ulong TmpfsMagic = 0x01021994;  // TMPFS_MAGIC
    private const ulong RamfsMagic = 0x858458f6;  // RAMFS_MAGIC

    public string Path { get; }

    /// <summary>The descriptor; I/O on it goes through a <see cref="Ring"/> (<see cref="emu_io.fd"/>).</summary>
    public FileDescriptorHandle Handle { get; }

    /// <summary>st_size, or BLKGETSIZE64 for a block device.</summary>
    public ulong SizeBytes { get; }

    /// <summary>BLKSSZGET, or the O_DIRECT offset alignment for a file.</summary>
    public uint LogicalBlockSize { get; }

    /// <summary>BLKPBSZGET, or st_blksize for a file.</summary>
    public uint PhysicalBlockSize { get; }

    /// <summary>Buffer address alignment O_DIRECT needs (statx STATX_DIOALIGN; 512 when the kernel does not say).</summary>
    public uint DioMemAlign { get; }

    /// <summary>File offset and length alignment O_DIRECT needs (statx STATX_DIOALIGN; 512 when the kernel does not say).</summary>
    public uint DioOffsetAlign { get; }

    public bool IsBlockDevice { get; }

    /// <summary>fstatfs f_type of the filesystem holding the file.</summary>
    public ulong FsMagic { get; }

    /// <summary>
    /// The file lives in RAM (tmpfs, ramfs): O_DIRECT there is a memory copy even where the kernel accepts it
    /// (tmpfs since Linux 6.6), so it is no backing store for disk I/O.
    /// </summary>
    public bool IsMemoryBacked => !IsBlockDevice && FsMagic is TmpfsMagic or RamfsMagic;

    /// <summary>This open created the file (<see cref="BlockDeviceOpenFlags.Create"/> on a missing path).</summary>
    public bool Created { get; }

    /// <summary>
    /// Opens <paramref name="path"/> with O_DIRECT. <paramref name="size"/> is the size the caller needs; 0 means
    /// whatever it is.
    /// </summary>
    /// <exception cref="ShimException">
    /// EISDIR for a directory; ENOENT for a missing path without Create; EINVAL when the filesystem refuses
    /// O_DIRECT (a file this call created is removed again) or for ReadOnly with Create or Grow; EFBIG when an
    /// existing file is shorter than <paramref name="size"/> without Grow (the file is left untouched) or a block
    /// device is smaller; ENOTBLK for other file types (character devices, FIFOs).
    /// </exception>
    public static unsafe BlockDevice Open(string path, BlockDeviceOpenFlags flags, ulong size)
    {
        byte[] utf8 = Utf8Z(path);
        int fd;
        emu_blockdev_info info;
        fixed (byte* p = utf8)
            Errno.ThrowIfError(EmuShim.emu_blockdev_open(p, (uint)flags, size, &fd, &info), $"emu_blockdev_open {path}");
        return new BlockDevice(path, new FileDescriptorHandle(fd), info);
    }

    /// <summary>
    /// Reads up to <c>buffer.Length</c> bytes at <paramref name="offset"/> through the page cache, on a descriptor
    /// of its own (e.g. to look for another filesystem's signature before formatting).
    /// </summary>
    /// <returns>The bytes read: fewer than asked at end of file.</returns>
    /// <exception cref="ShimException">The open or the read failed.</exception>
    public static unsafe int Peek(string path, ulong offset, Span<byte> buffer)
    {
        byte[] utf8 = Utf8Z(path);
        uint got;
        fixed (byte* p = utf8)
        fixed (byte* b = buffer)
            Errno.ThrowIfError(EmuShim.emu_blockdev_peek(p, offset, b, (uint)buffer.Length, &got), $"emu_blockdev_peek {path}");
        return (int)got;
    }

    public void Dispose() => Handle.Dispose();

    private static byte[] Utf8Z(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (path.Contains('\0'))
            throw new ArgumentException("a path cannot contain NUL", nameof(path));
        byte[] utf8 = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, utf8);
        return utf8;
    }
}
