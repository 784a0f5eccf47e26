// The block layer's System.Diagnostics.Metrics instruments, under the meter "Emu.Block", so dotnet-counters
// (dotnet-counters monitor --counters Emu.Block -p PID) and `emu diagnose` can watch live disks. Every instrument
// is observable: it reads the disk statistics when a listener collects, so the I/O path pays nothing for it.
// Each measurement is tagged with the disk name and, where it applies, the operation.
using System.Diagnostics.Metrics;
using Emu.Kernel.Stats;

namespace Emu.Block;

/// <summary>The "Emu.Block" meter and the disks it reports on.</summary>
public static class BlkMetrics
{
    /// <summary>The meter's name, for listeners.</summary>
    public const string MeterName = "Emu.Block";

    private static readonly LiveSet<GenDisk> s_disks = new();
    private static readonly Meter s_meter = new(MeterName);

    static BlkMetrics()
    {
        s_meter.CreateObservableCounter("emu.block.ios", static () => PerOp(static s => (s.ReadIos, s.WriteIos, s.FlushIos)),
            unit: "{io}", description: "Requests completed (reads, writes, flushes).");
        s_meter.CreateObservableCounter("emu.block.bytes", static () => PerOp(static s => (s.ReadSectors << Blk.SectorShift, s.WriteSectors << Blk.SectorShift, 0)),
            unit: "By", description: "Bytes moved by completed requests.");
        s_meter.CreateObservableCounter("emu.block.merges", static () => PerOp(static s => (s.ReadMerges, s.WriteMerges, 0)),
            unit: "{bio}", description: "Bios merged into an existing request.");
        s_meter.CreateObservableUpDownCounter("emu.block.in_flight", static () => PerDisk(static d => d.ReadStat().InFlight),
            unit: "{request}", description: "Requests submitted and not completed.");
        s_meter.CreateObservableGauge("emu.block.queue_depth", static () => PerDisk(static d => d.Queue.TagsInUse),
            unit: "{tag}", description: "Tags in use over all hardware queues.");
        s_meter.CreateObservableCounter("emu.block.io_ticks", static () => PerDisk(static d => d.ReadStat().IoTicksMs),
            unit: "ms", description: "Time the disk had requests in flight.");
    }

    internal static void Register(GenDisk disk) => s_disks.Add(disk);

    internal static void Unregister(GenDisk disk) => s_disks.Remove(disk);

    private static IEnumerable<Measurement<long>> PerDisk(Func<GenDisk, long> read)
    {
        foreach (GenDisk disk in s_disks.Snapshot())
        {
            yield return new Measurement<long>(read(disk), new KeyValuePair<string, object?>("disk", disk.DiskName));
        }
    }

    private static IEnumerable<Measurement<long>> PerOp(Func<DiskStat, (long Read, long Write, long Flush)> read)
    {
        foreach (GenDisk disk in s_disks.Snapshot())
        {
            (long r, long w, long f) = read(disk.ReadStat());
            var name = new KeyValuePair<string, object?>("disk", disk.DiskName);
            yield return new Measurement<long>(r, name, new KeyValuePair<string, object?>("op", "read"));
            yield return new Measurement<long>(w, name, new KeyValuePair<string, object?>("op", "write"));
            yield return new Measurement<long>(f, name, new KeyValuePair<string, object?>("op", "flush"));
        }
    }
}
