using System.Diagnostics.Metrics;

namespace Emu.Block.Tests;

/// <summary>
/// Disk statistics (block/genhd.c part_stat_show, Documentation/block/stat.txt) and the "Emu.Block" meter:
/// completions, sectors and merges per operation, requests in flight, and the instruments dotnet-counters reads.
/// </summary>
public sealed class StatsTests : BlockTestBase
{
    private const int Block = 4096;

    [Test]
    public void InFlight_CountsRequestsUntilTheyComplete()
    {
        using var host = EmuTask.Adopt("stat-test");
        var engine = new TestEngine(1 << 20);
        engine.CloseGate();
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(3 * Block);
        var done = new Completion("bios");

        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Read, 0, buf.Pointer, Block), done));
        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Read, 16, buf.Pointer + Block, Block), done));
        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, 32, buf.Pointer + (2 * Block), Block), done));

        DiskStat during = disk.ReadStat();
        Assert.That((during.InFlight, during.ReadsInFlight, during.WritesInFlight), Is.EqualTo((3L, 2L, 1L)));
        Assert.That(during.ReadIos + during.WriteIos, Is.Zero);

        engine.Release();
        WaitFor(done, 3);
        DiskStat after = disk.ReadStat();
        Assert.That((after.InFlight, after.ReadIos, after.ReadSectors, after.WriteIos, after.WriteSectors),
            Is.EqualTo((0L, 2L, 16L, 1L, 8L)));
    }

    [Test]
    public void Format_PrintsTheSeventeenFieldsOfSysBlockStat()
    {
        using var host = EmuTask.Adopt("stat-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        SubmitAndWait(disk, ReqOp.Write, 0, buf.Pointer, Block);
        SubmitAndWait(disk, ReqOp.Flush, 0, 0, 0);

        string[] fields = disk.ReadStat().Format().Split(' ', StringSplitOptions.RemoveEmptyEntries);

        Assert.That(fields, Has.Length.EqualTo(17));
        Assert.That((fields[4], fields[6], fields[8], fields[15]), Is.EqualTo(("1", "8", "0", "1")), "write ios, write sectors, in_flight, flush ios");
    }

    [Test]
    public void Meter_PublishesCompletionsPerDiskAndOp()
    {
        using var host = EmuTask.Adopt("stat-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20), name: "emu-meter");
        NativeBuffer buf = Buffer(Block);
        SubmitAndWait(disk, ReqOp.Write, 0, buf.Pointer, Block);
        SubmitAndWait(disk, ReqOp.Read, 0, buf.Pointer, Block);
        SubmitAndWait(disk, ReqOp.Read, 8, buf.Pointer, Block);
        var seen = new Dictionary<(string, string?, string?), long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == BlkMetrics.MeterName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? diskTag = null, op = null;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "disk")
                {
                    diskTag = (string?)tag.Value;
                }
                else if (tag.Key == "op")
                {
                    op = (string?)tag.Value;
                }
            }

            if (diskTag == "emu-meter")
            {
                seen[(instrument.Name, diskTag, op)] = value;
            }
        });
        listener.Start();

        listener.RecordObservableInstruments();

        Assert.That(seen[("emu.block.ios", "emu-meter", "read")], Is.EqualTo(2));
        Assert.That(seen[("emu.block.ios", "emu-meter", "write")], Is.EqualTo(1));
        Assert.That(seen[("emu.block.bytes", "emu-meter", "read")], Is.EqualTo(2 * Block));
        Assert.That(seen[("emu.block.in_flight", "emu-meter", null)], Is.Zero);
        Assert.That(seen[("emu.block.queue_depth", "emu-meter", null)], Is.Zero);
    }

    [Test]
    public void DisposedDisk_FailsNewBiosWithEnodev()
    {
        using var host = EmuTask.Adopt("stat-test");
        GenDisk disk = GenDisk.Create("emu-gone", new MemEngine(1 << 20), new BlkMqTagSet { NrHwQueues = 1, QueueDepth = 4 });
        NativeBuffer buf = Buffer(Block);
        Assert.That(SubmitAndWait(disk, ReqOp.Write, 0, buf.Pointer, Block), Is.Zero);
        EmuTask irq = disk.IrqTasks[0];

        disk.Dispose();

        Assert.That(irq.HasExited, Is.True, "the completion thread exited");
        Assert.That(SubmitAndWait(disk, ReqOp.Read, 0, buf.Pointer, Block), Is.EqualTo(-19));
    }

    [Test]
    public void HardwareQueues_DefaultToOnePerNumaNode_AndCoverEveryCpu()
    {
        Topology topology = Topology.Read();
        var engine = new MemEngine(1 << 20);
        GenDisk disk = Track(GenDisk.Create("emu-map", engine, new BlkMqTagSet { QueueDepth = 4 }));

        Assert.That(disk.Queue.NrHwQueues, Is.EqualTo(topology.NumaNodes.Count(n => n.Cpus.Length > 0)));
        Assert.That(disk.Queue.HwQueueCpus.SelectMany(c => c).Order(), Is.EqualTo(topology.Cpus.Select(c => c.Cpu).Order()));
        Assert.That(disk.IrqTasks.Select(t => t.AllowedCpus!.ToArray()), Is.EqualTo(disk.Queue.HwQueueCpus.Select(c => c.ToArray())));
    }

    [Test]
    public void ExplicitHardwareQueueCount_SpreadsCpusAcrossThem()
    {
        Topology topology = Topology.Read();
        Assume.That(topology.Cpus.Length, Is.GreaterThanOrEqualTo(2), "needs two CPUs");
        GenDisk disk = Track(GenDisk.Create("emu-2q", new MemEngine(1 << 20), new BlkMqTagSet { NrHwQueues = 2, QueueDepth = 4 }));

        Assert.That(disk.Queue.NrHwQueues, Is.EqualTo(2));
        Assert.That(disk.IrqTasks.Select(t => t.Comm), Is.EqualTo(new[] { "irq/emu-2q-q0", "irq/emu-2q-q1" }));
        Assert.That(disk.Queue.HwQueueCpus.All(c => c.Count > 0), Is.True);
    }
}
