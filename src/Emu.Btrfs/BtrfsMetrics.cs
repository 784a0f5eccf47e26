// The filesystem's System.Diagnostics.Metrics instruments, under the meter "Emu.Btrfs", so dotnet-counters and
// `emu diagnose` can watch the state the ade770294df2 deadlock is made of: dirty pages and pages under
// writeback (/proc/vmstat nr_dirty, nr_writeback), ordered extents in flight, locked extent ranges, and how
// many O_DIRECT reads, buffered writes and -ENOTBLK fallbacks (the v4.6 fix at work) completed.
// Model: the observable instruments appear at the first mount. The state is read when a listener collects, from every mounted super block (super_blocks): its
// zone's vm counters, and its inodes' ordered trees and io trees. The operation counts are Counter<long>s
// bumped once per system call, not per page; with no listener, Add is one predictable branch on the
// instrument's Enabled. Each measurement is tagged with the device name, as Emu.Block's are.
// Differs: the kernel has no count of lock_extent_direct's -ENOTBLK fallbacks; Emu counts them to show the
// patched path taken.
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Emu.Block;

namespace Emu.Btrfs;

/// <summary>The "Emu.Btrfs" meter.</summary>
public static class BtrfsMetrics
{
    /// <summary>The meter's name, for listeners.</summary>
    public const string MeterName = "Emu.Btrfs";

    private static readonly Meter s_meter = new(MeterName);
    private static readonly Counter<long> s_directIos = s_meter.CreateCounter<long>("emu.btrfs.direct_io",
        unit: "{call}", description: "O_DIRECT reads and writes completed without an error (op=read|write), short ones included.");
    private static readonly Counter<long> s_bufferedWrites = s_meter.CreateCounter<long>("emu.btrfs.buffered_writes",
        unit: "{call}", description: "Buffered writes that copied data into the page cache.");
    private static readonly Counter<long> s_dioReadFallbacks = s_meter.CreateCounter<long>("emu.btrfs.dio_read_fallbacks",
        unit: "{call}", description: "lock_extent_direct() -ENOTBLK for a read meeting a buffered write's ordered extent (v4.6 only): the rest is read buffered.");

    private static int s_published; // Interlocked

    /// <summary>Creates the observable instruments, once; mounting calls it, so they exist from the first mount on.</summary>
    public static void Publish()
    {
        if (Interlocked.Exchange(ref s_published, 1) != 0)
        {
            return;
        }

        s_meter.CreateObservableUpDownCounter("emu.btrfs.dirty_pages", static () => PerZone(static z => z.NrFileDirty),
            unit: "{page}", description: "NR_FILE_DIRTY: dirty page-cache pages.");
        s_meter.CreateObservableUpDownCounter("emu.btrfs.writeback_pages", static () => PerZone(static z => z.NrWriteback),
            unit: "{page}", description: "NR_WRITEBACK: pages under writeback.");
        s_meter.CreateObservableCounter("emu.btrfs.pages_written", static () => PerZone(static z => z.NrWritten),
            unit: "{page}", description: "NR_WRITTEN: pages whose writeback ended.");
        s_meter.CreateObservableUpDownCounter("emu.btrfs.ordered_extents", static () => PerInode(static i => i.OrderedTree.Count),
            unit: "{extent}", description: "Ordered extents in flight: allocated, written or being written, btrfs_finish_ordered_io not done.");
        s_meter.CreateObservableUpDownCounter("emu.btrfs.locked_extent_ranges", static () => PerInode(static i => CountLocked(i.IoTree)),
            unit: "{range}", description: "Extent states with EXTENT_LOCKED set (lock_extent_bits held) over all inodes.");
        s_meter.CreateObservableUpDownCounter("emu.btrfs.delalloc_bytes", static () => PerInode(static i => i.DelallocBytes),
            unit: "By", description: "Dirty bytes with no disk space allocated yet (EXTENT_DELALLOC).");
    }

    /// <summary>An O_DIRECT read or write of <paramref name="inode"/> returned <paramref name="ret"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void NoteDirectIo(VfsInode inode, ReqOp op, long ret)
    {
        if (s_directIos.Enabled && ret >= 0)
        {
            s_directIos.Add(1, new KeyValuePair<string, object?>("disk", inode.Sb.SId), new KeyValuePair<string, object?>("op", op == ReqOp.Read ? "read" : "write"));
        }
    }

    /// <summary>A buffered write of <paramref name="inode"/> copied data into the page cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void NoteBufferedWrite(VfsInode inode)
    {
        if (s_bufferedWrites.Enabled)
        {
            s_bufferedWrites.Add(1, new KeyValuePair<string, object?>("disk", inode.Sb.SId));
        }
    }

    /// <summary>lock_extent_direct() sent a read of <paramref name="inode"/> to the page cache (-ENOTBLK).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void NoteDioReadFallback(VfsInode inode)
    {
        if (s_dioReadFallbacks.Enabled)
        {
            s_dioReadFallbacks.Add(1, new KeyValuePair<string, object?>("disk", inode.Sb.SId));
        }
    }

    private static IEnumerable<Measurement<long>> PerZone(Func<Zone, long> read)
    {
        foreach (SuperBlock sb in SuperBlock.All())
        {
            if (sb.Wb is { } wb)
            {
                yield return new Measurement<long>(read(wb.Zone), new KeyValuePair<string, object?>("disk", sb.SId));
            }
        }
    }

    private static IEnumerable<Measurement<long>> PerInode(Func<BtrfsInode, long> read)
    {
        foreach (SuperBlock sb in SuperBlock.All())
        {
            long sum = 0;
            foreach (VfsInode inode in sb.Inodes())
            {
                if (inode is BtrfsInode btrfsInode)
                {
                    sum += read(btrfsInode);
                }
            }

            yield return new Measurement<long>(sum, new KeyValuePair<string, object?>("disk", sb.SId));
        }
    }

    private static long CountLocked(ExtentIoTree tree)
    {
        long locked = 0;
        foreach (ExtentStateInfo state in tree.Snapshot())
        {
            if ((state.Bits & ExtentBits.Locked) != 0)
            {
                locked++;
            }
        }

        return locked;
    }
}
