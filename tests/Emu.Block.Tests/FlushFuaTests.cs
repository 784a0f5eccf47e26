namespace Emu.Block.Tests;

/// <summary>
/// Cache flushes and forced unit access (block/blk-flush.c v4.4): a flush bio reaches the engine as a cache flush
/// (EMU_OP_FSYNC); a write with PREFLUSH issues the flush first, then the data; a FUA write carries EMU_IO_FUA.
/// </summary>
public sealed class FlushFuaTests : BlockTestBase
{
    private const int Block = 4096;

    [Test]
    public void FlushBio_ReachesTheEngineAsOneCacheFlush()
    {
        using var host = EmuTask.Adopt("flush-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);

        Assert.That(SubmitAndWait(disk, ReqOp.Flush, 0, 0, 0), Is.Zero);

        Assert.That(engine.Ios.Select(io => (emu_io_op)io.op), Is.EqualTo(new[] { emu_io_op.EMU_OP_FSYNC }));
        Assert.That(engine.Counters.Flushes, Is.EqualTo(1));
        DiskStat stat = disk.ReadStat();
        Assert.That((stat.FlushIos, stat.WriteIos, stat.InFlight), Is.EqualTo((1L, 0L, 0L)));
    }

    [Test]
    public void WriteWithPreflush_FlushesFirst_ThenWrites()
    {
        using var host = EmuTask.Adopt("flush-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(Block);

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 8, buf.Pointer, Block, ReqFlags.Preflush | ReqFlags.Sync), Is.Zero);

        Assert.That(engine.Ios.Select(io => ((emu_io_op)io.op, io.offset)),
            Is.EqualTo(new[] { (emu_io_op.EMU_OP_FSYNC, 0UL), (emu_io_op.EMU_OP_WRITE, 4096UL) }));
        DiskStat stat = disk.ReadStat();
        Assert.That((stat.FlushIos, stat.WriteIos, stat.WriteSectors), Is.EqualTo((1L, 1L, 8L)));
    }

    [Test]
    public void FuaWrite_CarriesTheFuaFlagToTheEngine()
    {
        using var host = EmuTask.Adopt("flush-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(Block);

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 0, buf.Pointer, Block, ReqFlags.Fua), Is.Zero);
        Assert.That(SubmitAndWait(disk, ReqOp.Write, 8, buf.Pointer, Block), Is.Zero);

        Assert.That(engine.Ios.Select(io => (emu_io_flags)io.flags), Is.EqualTo(new[] { emu_io_flags.EMU_IO_FUA, (emu_io_flags)0 }));
        Assert.That(engine.Counters.FuaWrites, Is.EqualTo(1));
        Assert.That(engine.Counters.Flushes, Is.Zero, "native FUA: no post-flush");
    }

    [Test]
    public void PreflushFuaWrite_FlushesThenWritesWithFua()
    {
        using var host = EmuTask.Adopt("flush-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(Block);

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 0, buf.Pointer, Block, ReqFlags.Preflush | ReqFlags.Fua), Is.Zero);

        Assert.That(engine.Ios.Select(io => ((emu_io_op)io.op, (emu_io_flags)io.flags)),
            Is.EqualTo(new[] { (emu_io_op.EMU_OP_FSYNC, (emu_io_flags)0), (emu_io_op.EMU_OP_WRITE, emu_io_flags.EMU_IO_FUA) }));
    }

    [Test]
    public void EmptyWriteWithPreflush_IsAPureFlush()
    {
        using var host = EmuTask.Adopt("flush-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 0, 0, 0, ReqFlags.Preflush), Is.Zero);

        Assert.That(engine.Ios.Select(io => (emu_io_op)io.op), Is.EqualTo(new[] { emu_io_op.EMU_OP_FSYNC }));
        Assert.That(disk.ReadStat().FlushIos, Is.EqualTo(1));
    }

    [Test]
    public void FuaWrite_UnderAPlug_IsNotMerged()
    {
        using var host = EmuTask.Adopt("flush-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(2 * Block);
        var done = new Completion("bios");
        var plug = new BlkPlug();

        BlkCore.BlkStartPlug(plug);
        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, 0, buf.Pointer, Block), done));
        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, 8, buf.Pointer + Block, Block, ReqFlags.Fua), done));
        BlkCore.BlkFinishPlug(plug);
        WaitFor(done, 2);

        Assert.That(engine.Ios, Has.Length.EqualTo(2));
        Assert.That(disk.ReadStat().WriteMerges, Is.Zero);
    }
}
