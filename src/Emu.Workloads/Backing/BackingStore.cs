// The device a workload's filesystem lives on: a RAM disk (--engine mem), or a file or block device opened
// with O_DIRECT under the io_uring or psync engine. Without --backing, Emu keeps its own file, backing.img, in
// its data folder ($EMU_DATA_DIR, else $XDG_DATA_HOME/emu, else ~/.local/share/emu; ./.emu-data when that
// folder is in RAM), created or grown to what the run needs and reformatted on every run. Before anything is
// written, the store is checked: a mounted device, or one holding another filesystem, a volume or partition
// table, or any data Emu did not write, is refused unless --force is given; a store smaller than the run
// needs is refused. A refusal is one line (WorkloadUsageException) and leaves the store untouched.
using Emu.Block;
using Emu.Interop;

namespace Emu.Workloads.Backing;

/// <summary>The I/O engine under the emulated disk.</summary>
public enum BackingEngine
{
    /// <summary>O_DIRECT through io_uring (psync with a warning where io_uring is unavailable).</summary>
    IoUring,

    /// <summary>O_DIRECT through pread/pwrite.</summary>
    Psync,

    /// <summary>A RAM disk: no file, no disk I/O.</summary>
    Mem,
}

/// <summary>What a run asks of its backing store.</summary>
public sealed record BackingOptions
{
    /// <summary>The engine (--engine).</summary>
    public BackingEngine Engine { get; init; } = BackingEngine.IoUring;

    /// <summary>A file or block device to use instead of Emu's own file (--backing); null for the default.</summary>
    public string? Path { get; init; }

    /// <summary>Overwrite a store that holds data Emu did not write, or is mounted (--force).</summary>
    public bool Force { get; init; }

    /// <summary>Bytes the run needs: the default file is created or grown to this; a smaller store is refused.</summary>
    public long RequiredBytes { get; init; } = 256L << 20;

    /// <summary>The emulated disk's name (disk_name).</summary>
    public string DiskName { get; init; } = "emu0";
}

/// <summary>An opened backing store and the emulated disk over it.</summary>
public sealed class BackingStore : IDisposable
{
    /// <summary>The name of Emu's own backing file in its data folder.</summary>
    public const string DefaultFileName = "backing.img";

    private int _disposed;

    private BackingStore(GenDisk disk, string description, string? path, bool created)
    {
        Disk = disk;
        Description = description;
        Path = path;
        Created = created;
    }

    /// <summary>The emulated disk (the store is its engine's device).</summary>
    public GenDisk Disk { get; }

    /// <summary>What the store is, for reports: "mem (256MiB RAM disk)" or "/path/backing.img (io_uring)".</summary>
    public string Description { get; }

    /// <summary>The file or device path; null for the mem engine.</summary>
    public string? Path { get; }

    /// <summary>Whether this run created the file.</summary>
    public bool Created { get; }

    /// <summary>The engine actually running: "io_uring", "psync" (also when io_uring was asked for but is unavailable) or "mem".</summary>
    public string EngineName => Disk.Engine.Name;

    /// <summary>Emu's data folder: $EMU_DATA_DIR, else $XDG_DATA_HOME/emu, else ~/.local/share/emu.</summary>
    public static string DefaultDataDir()
    {
        string? dir = Environment.GetEnvironmentVariable("EMU_DATA_DIR");
        if (!string.IsNullOrEmpty(dir))
        {
            return System.IO.Path.GetFullPath(dir);
        }

        string? xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        if (!string.IsNullOrEmpty(xdg))
        {
            return System.IO.Path.Combine(System.IO.Path.GetFullPath(xdg), "emu");
        }

        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return System.IO.Path.Combine(home, ".local", "share", "emu");
    }

    /// <summary>
    /// Checks and opens the store <paramref name="options"/> describe and creates the emulated disk over it.
    /// </summary>
    /// <exception cref="WorkloadUsageException">The store was refused; nothing was created or written.</exception>
    public static BackingStore Open(BackingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.RequiredBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "RequiredBytes must be positive");
        }

        if (options.Engine == BackingEngine.Mem)
        {
            if (options.Path is not null)
            {
                throw new WorkloadUsageException("--backing names a file or device, but --engine mem runs in RAM without one; drop one of them");
            }

            var mem = new MemEngine(options.RequiredBytes);
            return new BackingStore(GenDisk.Create(options.DiskName, mem), $"mem ({Size(options.RequiredBytes)} RAM disk)", null, false);
        }

        MountTable mounts = MountTable.Read();
        if (options.Path is not null)
        {
            return OpenPath(options, System.IO.Path.GetFullPath(options.Path), mounts, isDefault: false);
        }

        string dir = DefaultDataDir();
        if (IsMemoryFs(mounts, dir))
        {
            string local = System.IO.Path.GetFullPath(".emu-data");
            if (IsMemoryFs(mounts, local))
            {
                throw new WorkloadUsageException($"Emu's data folder {dir} and ./.emu-data are both on tmpfs/ramfs, where O_DIRECT is no disk I/O; name a file on a disk-backed filesystem with --backing PATH");
            }

            dir = local;
        }

        return OpenPath(options, System.IO.Path.Combine(dir, DefaultFileName), mounts, isDefault: true);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Disk.Dispose();
        }
    }

    /// <summary>
    /// Refuses <paramref name="path"/> unless it may be formatted: it must not be mounted, and its first blocks
    /// must be zero or Emu's own superblock (either is overridden by <paramref name="force"/>). A missing path
    /// passes. Writes nothing.
    /// </summary>
    /// <exception cref="WorkloadUsageException">The path was refused.</exception>
    public static void CheckSafeToFormat(string path, bool force, MountTable mounts)
    {
        ArgumentNullException.ThrowIfNull(mounts);
        if (Directory.Exists(path))
        {
            throw new WorkloadUsageException($"{path} is a directory; --backing needs a file or a block device");
        }

        if (!File.Exists(path))
        {
            return;
        }

        if (force)
        {
            return;
        }

        if (IsBlockDevicePath(path))
        {
            if (mounts.IsBlockDeviceMounted(path, out string mountPoint))
            {
                throw new WorkloadUsageException($"{path} is mounted on {mountPoint}; Emu will not format a mounted device (unmount it, or pass --force)");
            }
        }
        else if (mounts.IsLoopBackingMounted(path, out string loop, out string loopMount))
        {
            throw new WorkloadUsageException($"{path} backs {loop}, which is mounted on {loopMount}; Emu will not format it (unmount it, or pass --force)");
        }

        byte[] head = new byte[DiskSignatures.ProbeBytes];
        int got;
        try
        {
            got = BlockDevice.Peek(path, 0, head);
        }
        catch (ShimException e)
        {
            throw new WorkloadUsageException($"cannot read {path} to check what it holds: {Errno.Message(e.Errno)}");
        }

        DiskContent content = DiskSignatures.Probe(head.AsSpan(0, got), out string what);
        if (content is DiskContent.ForeignSignature or DiskContent.UnknownData)
        {
            throw new WorkloadUsageException($"{path} holds {what}; Emu would overwrite it (pass --force to format it anyway, or name another file with --backing)");
        }
    }

    private static BackingStore OpenPath(BackingOptions options, string path, MountTable mounts, bool isDefault)
    {
        CheckSafeToFormat(path, options.Force, mounts);
        bool exists = File.Exists(path);
        if (exists)
        {
            long size = IsBlockDevicePath(path) ? -1 : new FileInfo(path).Length;
            if (!isDefault && size >= 0 && size < options.RequiredBytes)
            {
                throw new WorkloadUsageException($"{path} is {Size(size)}, too small for this run, which needs {Size(options.RequiredBytes)}; grow it (truncate -s {options.RequiredBytes} {path}), lower the sizes asked for, or let Emu use its own file (omit --backing)");
            }
        }
        else
        {
            string? parent = System.IO.Path.GetDirectoryName(path);
            if (isDefault && parent is not null)
            {
                Directory.CreateDirectory(parent);
            }
            else if (parent is not null && !Directory.Exists(parent))
            {
                throw new WorkloadUsageException($"{parent} does not exist; create it, or name a file in an existing folder with --backing");
            }
        }

        BlockDeviceOpenFlags flags = BlockDeviceOpenFlags.Create | (isDefault ? BlockDeviceOpenFlags.Grow : BlockDeviceOpenFlags.None);
        BlockDevice device;
        try
        {
            device = BlockDevice.Open(path, flags, (ulong)options.RequiredBytes);
        }
        catch (ShimException e)
        {
            throw new WorkloadUsageException(e.Errno switch
            {
                Errno.EINVAL => $"{path} is on a filesystem that refuses O_DIRECT (tmpfs?); name a file on a disk-backed filesystem such as ext4 or xfs with --backing",
                Errno.EFBIG => $"{path} is smaller than the {Size(options.RequiredBytes)} this run needs; use a larger device or file, or lower the sizes asked for",
                Errno.EACCES => $"{path}: permission denied",
                Errno.ENOTBLK => $"{path} is neither a regular file nor a block device",
                _ => $"cannot open {path}: {Errno.Message(e.Errno)}",
            });
        }

        if (device.IsMemoryBacked)
        {
            bool created = device.Created;
            device.Dispose();
            if (created)
            {
                File.Delete(path);
            }

            throw new WorkloadUsageException($"{path} is on tmpfs/ramfs, where O_DIRECT is a memory copy, not disk I/O; name a file on a disk-backed filesystem with --backing PATH");
        }

        if ((long)device.SizeBytes < options.RequiredBytes)
        {
            device.Dispose();
            throw new WorkloadUsageException($"{path} is {Size((long)device.SizeBytes)}, too small for this run, which needs {Size(options.RequiredBytes)}; use a larger device or file, or lower the sizes asked for");
        }

        RingEngine engine = options.Engine == BackingEngine.Psync
            ? new PsyncEngine(device, ownsDevice: true)
            : new UringEngine(device, auto: true, ownsDevice: true);
        GenDisk disk = GenDisk.Create(options.DiskName, engine);
        return new BackingStore(disk, $"{path} ({Size((long)device.SizeBytes)}, {engine.Name})", path, device.Created);
    }

    private static bool IsMemoryFs(MountTable mounts, string dir)
    {
        string probe = dir;
        while (!Directory.Exists(probe))
        {
            string? parent = System.IO.Path.GetDirectoryName(probe);
            if (parent is null)
            {
                break;
            }

            probe = parent;
        }

        return mounts.MountOf(probe)?.FsType is "tmpfs" or "ramfs";
    }

    private static bool IsBlockDevicePath(string path)
    {
        string real = MountTable.Canonical(path);
        return real.StartsWith("/dev/", StringComparison.Ordinal) && MountTable.BlockDeviceNumber(real) is not null;
    }

    private static string Size(long bytes) =>
        bytes % (1L << 20) == 0 ? $"{bytes >> 20}MiB" : bytes % 1024 == 0 ? $"{bytes >> 10}KiB" : $"{bytes} bytes";
}
