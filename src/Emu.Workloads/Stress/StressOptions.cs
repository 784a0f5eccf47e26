// The knobs of `emu stress` and what they mean for the backing store's size.
using Emu.Btrfs;
using Emu.Workloads.Backing;

namespace Emu.Workloads.Stress;

/// <summary>What a stress run does.</summary>
public sealed record StressOptions
{
    /// <summary>Most blocks one data operation touches.</summary>
    public const int MaxBlocksPerOp = 8;

    /// <summary>Most snapshots one run creates (each pins the extents it saw, and snapshots are never deleted).</summary>
    public const int MaxSnapshots = 100;

    /// <summary>The largest <see cref="BlockSize"/>: the backing store grows with it (see <see cref="RequiredBackingBytes"/>).</summary>
    public const long MaxBlockSize = 128 * 1024;

    /// <summary>Snapshots taken back to back at the start, before the rest are spread over the runtime.</summary>
    public const int EarlySnapshots = 40;

    /// <summary>The kernel to emulate.</summary>
    public BtrfsMode Mode { get; init; } = BtrfsMode.Unpatched;

    /// <summary>How many files the tasks share.</summary>
    public int Files { get; init; } = 2;

    /// <summary>Bytes per file (a multiple of 4 KiB).</summary>
    public long FileSize { get; init; } = 64 * 1024;

    /// <summary>
    /// Data tasks, alternately buffered writers and O_DIRECT readers; a syncer and a snapshotter run besides
    /// them, and the flusher writes back in the background.
    /// </summary>
    public int Tasks { get; init; } = 4;

    /// <summary>
    /// O_DIRECT writers besides the data tasks. Not in the default mix: an O_DIRECT read that meets a DIRECT
    /// ordered extent waits for it in v4.6 too, while holding the blocks it mapped, and the extent's
    /// btrfs_finish_ordered_io can end up waiting for one of those blocks (wait_extent_bit restarts from the
    /// start of the state it slept on, which may lie before the range it wants) - a second deadlock that
    /// ade770294df2 does not address, found by this mix.
    /// </summary>
    public int DirectWriters { get; init; }

    /// <summary>
    /// How many of the data tasks read with O_DIRECT (the rest write through the page cache), or null for
    /// writers and readers alternately.
    /// </summary>
    public int? Readers { get; init; }

    /// <summary>
    /// Whether tasks may touch the same blocks. Without conflicts each data task owns a disjoint slice of
    /// every file, so no O_DIRECT read ever meets a writer's dirty pages or ordered extents: the mix without
    /// the deadlock's ingredients, to compare the two kernels' cost where neither can deadlock.
    /// </summary>
    public bool Conflicts { get; init; } = true;

    /// <summary>Bytes per data operation (a multiple of 4 KiB, fio's bs), or null for a random size per operation.</summary>
    public long? BlockSize { get; init; }

    /// <summary>Whether a task calls sync(2) over and over beside the data tasks.</summary>
    public bool Syncer { get; init; } = true;

    /// <summary>Whether a task creates snapshots beside the data tasks.</summary>
    public bool Snapshotter { get; init; } = true;

    /// <summary>How long to run unless a deadlock or hang stops it first.</summary>
    public TimeSpan Runtime { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The seed of every random choice.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>hung_task_timeout, in ms.</summary>
    public long HungTaskTimeoutMs { get; init; } = 2000;

    /// <summary>The backing store (its size is set from the files).</summary>
    public BackingOptions Backing { get; init; } = new();

    /// <summary>Where the kernel log is echoed, or null.</summary>
    public TextWriter? Console { get; init; }

    /// <summary>Called once per second with the elapsed time and a line of counts, or null for no progress.</summary>
    public Action<TimeSpan, string>? Progress { get; init; }

    /// <summary>
    /// Called once, on the thread running the workload, when the run stops at a confirmed deadlock ("deadlock") or
    /// a hung-task report ("hung task"), while the blocked tasks still sleep where they stuck: e.g. to dump the process.
    /// </summary>
    public Action<string>? OnHang { get; init; }

    /// <summary>Blocks per file.</summary>
    public int BlocksPerFile => (int)(FileSize / Payload.BlockSize);

    /// <summary>Most blocks one data operation touches with this <see cref="BlockSize"/>.</summary>
    public int MaxOpBlocks => Math.Max(MaxBlocksPerOp, (int)((BlockSize ?? 0) / Payload.BlockSize));

    /// <summary>Blocks of each file a data task may touch: the whole file, or without conflicts its own slice.</summary>
    public int BlocksPerTask => Conflicts ? BlocksPerFile : BlocksPerFile / (Tasks + DirectWriters);

    /// <summary>
    /// The backing store the run needs: the reserved superblock area, every file rewritten copy-on-write a few
    /// times over, what every snapshot may pin - each block of a file may keep a whole old extent of up to
    /// MaxBlocksPerOp blocks alive (btrfs frees an extent only when no item references any part of it) - and
    /// slack for allocator fragmentation.
    /// </summary>
    public long RequiredBackingBytes
    {
        get
        {
            long data = Files * FileSize;
            long bytes = (1L << 20) + data * MaxOpBlocks * (MaxSnapshots + 8) + (16L << 20);
            return (bytes + (1L << 20) - 1) & ~((1L << 20) - 1);
        }
    }

    /// <summary>Checks the sizes; returns a one-line problem, or null.</summary>
    public string? Validate()
    {
        if (Files < 1 || Files > 1024)
        {
            return $"--files {Files} is out of range; use 1 to 1024";
        }

        if (FileSize < 2 * Payload.BlockSize || FileSize % Payload.BlockSize != 0 || FileSize > (1L << 30))
        {
            return $"--file-size {FileSize} must be a multiple of 4 KiB between 8 KiB and 1 GiB";
        }

        if (Tasks < 1 || Tasks > 256)
        {
            return $"--tasks {Tasks} is out of range; use 1 to 256";
        }

        if (DirectWriters < 0 || DirectWriters > 256)
        {
            return $"--dio-writers {DirectWriters} is out of range; use 0 to 256";
        }

        if (Runtime <= TimeSpan.Zero)
        {
            return "--runtime must be positive";
        }

        if (Readers is { } readers && (readers < 0 || readers > Tasks))
        {
            return $"--readers {readers} is out of range; use 0 to the {Tasks} data tasks";
        }

        if (BlockSize is { } bs && (bs < Payload.BlockSize || bs % Payload.BlockSize != 0 || bs > MaxBlockSize))
        {
            return $"--bs {bs} must be a multiple of 4 KiB between 4 KiB and {MaxBlockSize >> 10} KiB";
        }

        int opBlocks = BlockSize is { } size ? (int)(size / Payload.BlockSize) : 2;
        if (BlocksPerTask < opBlocks)
        {
            return Conflicts
                ? $"--file-size {FileSize} is smaller than one operation ({opBlocks} blocks); use a larger --file-size or a smaller --bs"
                : $"--no-conflicts gives each of the {Tasks + DirectWriters} tasks {BlocksPerTask} blocks of each file, fewer than one operation's {opBlocks}; use a larger --file-size or fewer tasks";
        }

        return null;
    }
}
