namespace Emu.Block.Tests;

/// <summary>
/// Fault injection (block/blk-core.c v4.4 fail_make_request / should_fail, dm-flakey, dm-delay): chosen bios fail
/// with the configured error in bi_error without reaching the media; a delay holds matching completions on the
/// completion thread's delay list and shows in the statistics.
/// </summary>
public sealed class FaultInjectionTests : BlockTestBase
{
    private const int Block = 4096;
    private const long Ms = 1_000_000;

    [Test]
    public void FailNth_FailsExactlyTheNthIo_WithEio_WithoutTouchingTheMedia()
    {
        using var host = EmuTask.Adopt("fault-test");
        var engine = new MemEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(Block);
        buf.Span.Fill(0xAB);
        disk.Faults.Configure(new FaultConfig { FailNth = 3 });

        int[] errors = Enumerable.Range(0, 5).Select(i => SubmitAndWait(disk, ReqOp.Write, i * 8, buf.Pointer, Block)).ToArray();

        Assert.That(errors, Is.EqualTo(new[] { 0, 0, -5, 0, 0 }));
        Assert.That(disk.Faults.Injected, Is.EqualTo(1));
        Assert.That(engine.Counters.Writes, Is.EqualTo(4), "the failed write never reached the device");
        Assert.That(engine.Data(2 * Block, Block).ToArray(), Is.All.Zero, "block 2 untouched");
        Assert.That(engine.Data(3 * Block, Block).ToArray(), Is.All.EqualTo(0xAB));
    }

    [Test]
    public void FailReadsOnly_FailsReads_AndLetsWritesThrough()
    {
        using var host = EmuTask.Adopt("fault-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        disk.Faults.Configure(new FaultConfig { FailProbability = 1, Ops = FaultOps.Read, Error = -61 });

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 0, buf.Pointer, Block), Is.Zero);
        Assert.That(SubmitAndWait(disk, ReqOp.Read, 0, buf.Pointer, Block), Is.EqualTo(-61));
        Assert.That(SubmitAndWait(disk, ReqOp.Write, 8, buf.Pointer, Block), Is.Zero);
    }

    [Test]
    public void FailInSectorRange_FailsOnlyIoOverlappingTheRange()
    {
        using var host = EmuTask.Adopt("fault-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        disk.Faults.Configure(new FaultConfig { FailProbability = 1, FirstSector = 100, LastSector = 199 });

        Assert.That(SubmitAndWait(disk, ReqOp.Read, 88, buf.Pointer, Block), Is.Zero, "sectors 88-95");
        Assert.That(SubmitAndWait(disk, ReqOp.Read, 96, buf.Pointer, Block), Is.EqualTo(-5), "sectors 96-103 overlap");
        Assert.That(SubmitAndWait(disk, ReqOp.Write, 192, buf.Pointer, Block), Is.EqualTo(-5), "sectors 192-199");
        Assert.That(SubmitAndWait(disk, ReqOp.Write, 200, buf.Pointer, Block), Is.Zero, "sectors 200-207");
    }

    [Test]
    public void FailProbability_WithTheSameSeed_FailsTheSameIos()
    {
        using var host = EmuTask.Adopt("fault-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);

        int[] Run()
        {
            disk.Faults.Configure(new FaultConfig { FailProbability = 0.5, Seed = 1234 });
            return Enumerable.Range(0, 40).Select(i => SubmitAndWait(disk, ReqOp.Read, i * 8, buf.Pointer, Block)).ToArray();
        }

        int[] first = Run();
        int[] second = Run();

        Assert.That(second, Is.EqualTo(first));
        Assert.That(first.Count(e => e != 0), Is.InRange(5, 35), "about half fail");
    }

    [Test]
    public void Times_LimitsTheNumberOfFailures()
    {
        using var host = EmuTask.Adopt("fault-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        disk.Faults.Configure(new FaultConfig { FailProbability = 1, Times = 2 });

        int[] errors = Enumerable.Range(0, 4).Select(i => SubmitAndWait(disk, ReqOp.Read, i * 8, buf.Pointer, Block)).ToArray();

        Assert.That(errors, Is.EqualTo(new[] { -5, -5, 0, 0 }));
    }

    [Test]
    public void InjectedError_EndsTheBioOnTheCompletionThread_InIrqContext()
    {
        using var host = EmuTask.Adopt("fault-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        disk.Faults.Configure(new FaultConfig { FailNth = 1 });
        var done = new Completion("bio");
        bool[] irq = new bool[1];
        Bio bio = NewBio(disk, ReqOp.Read, 0, buf.Pointer, Block);
        bio.BiPrivate = (done, irq);
        bio.BiEndIo = static b =>
        {
            var (d, i) = ((Completion, bool[]))b.BiPrivate!;
            i[0] = EmuTask.Current == b.BiDisk!.IrqTasks[0] && EmuTask.Current.InIrq;
            d.Complete();
        };

        BlkCore.SubmitBio(bio);
        WaitFor(done);

        Assert.That(bio.BiError, Is.EqualTo(-5));
        Assert.That(irq[0], Is.True);
    }

    [Test]
    public void FailedBio_DoesNotMergeWithItsNeighbours()
    {
        using var host = EmuTask.Adopt("fault-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(3 * Block);
        disk.Faults.Configure(new FaultConfig { FailNth = 2 });
        var done = new Completion("bios");
        var bios = new Bio[3];
        var plug = new BlkPlug();

        BlkCore.BlkStartPlug(plug);
        for (int i = 0; i < 3; i++)
        {
            bios[i] = CompleteOn(NewBio(disk, ReqOp.Write, i * 8, buf.Pointer + (i * Block), Block), done);
            BlkCore.SubmitBio(bios[i]);
        }

        BlkCore.BlkFinishPlug(plug);
        WaitFor(done, 3);

        Assert.That(bios.Select(b => b.BiError), Is.EqualTo(new[] { 0, -5, 0 }));
        Assert.That(engine.Ios.Select(io => (emu_io_op)io.op),
            Is.EquivalentTo(new[] { emu_io_op.EMU_OP_WRITE, emu_io_op.EMU_OP_NOP, emu_io_op.EMU_OP_WRITE }));
    }

    [Test]
    public void Delay_ShowsInTicksAndLatency_ByAtLeastTheDelay()
    {
        using var host = EmuTask.Adopt("fault-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        disk.Faults.Configure(new FaultConfig { DelayNs = 30 * Ms, Ops = FaultOps.Read });

        Assert.That(SubmitAndWait(disk, ReqOp.Read, 0, buf.Pointer, Block), Is.Zero);
        Assert.That(SubmitAndWait(disk, ReqOp.Write, 0, buf.Pointer, Block), Is.Zero);

        DiskStat stat = disk.ReadStat();
        Assert.That(stat.ReadTicksMs, Is.GreaterThanOrEqualTo(30));
        Assert.That(stat.TimeInQueueMs, Is.GreaterThanOrEqualTo(30));
        Assert.That(stat.IoTicksMs, Is.GreaterThanOrEqualTo(29), "busy while the delayed read was in flight (1 ms stamps)");
        Assert.That(disk.ReadLatency(ReqOp.Read).MinNs, Is.GreaterThanOrEqualTo(30 * Ms));
        Assert.That(disk.ReadLatency(ReqOp.Write).MaxNs, Is.LessThan(30 * Ms), "writes are not delayed");
        Assert.That(disk.Faults.Delayed, Is.EqualTo(1));
    }

    [Test]
    public void DelayedCompletion_DoesNotHoldBackLaterCompletions()
    {
        using var host = EmuTask.Adopt("fault-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(2 * Block);
        disk.Faults.Configure(new FaultConfig { DelayNs = 1000 * Ms, FirstSector = 0, LastSector = 7 });
        var slow = new Completion("slow");
        var fast = new Completion("fast");

        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Read, 0, buf.Pointer, Block), slow));
        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Read, 8, buf.Pointer + Block, Block), fast));
        WaitFor(fast);

        Assert.That(slow.CompletionDone, Is.False, "the delayed read is still held");
        Assert.That(disk.ReadStat().ReadsInFlight, Is.EqualTo(1));
        WaitFor(slow);
    }

    [Test]
    public void Delay_OnTheNullEngine_IsServedByTheCompletionThread()
    {
        using var host = EmuTask.Adopt("fault-test");
        GenDisk disk = CreateDisk(new NullEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        disk.Faults.Configure(new FaultConfig { DelayNs = 20 * Ms });
        var done = new Completion("bio");
        var ranOn = new EmuTask?[1];
        Bio bio = NewBio(disk, ReqOp.Read, 0, buf.Pointer, Block);
        bio.BiPrivate = (done, ranOn);
        bio.BiEndIo = static b =>
        {
            var (d, t) = ((Completion, EmuTask?[]))b.BiPrivate!;
            t[0] = EmuTask.Current;
            d.Complete();
        };

        BlkCore.SubmitBio(bio);
        Assert.That(done.CompletionDone, Is.False, "held, not completed inline");
        WaitFor(done);

        Assert.That(ranOn[0], Is.SameAs(disk.IrqTasks[0]));
        Assert.That(disk.ReadLatency(ReqOp.Read).MinNs, Is.GreaterThanOrEqualTo(20 * Ms));
    }
}
