namespace Emu.Block.Tests;

/// <summary>
/// Plugging and bio merging (block/blk-core.c v4.4: blk_attempt_plug_merge, bio_attempt_back_merge,
/// bio_attempt_front_merge; block/blk-merge.c ll_back_merge_fn): contiguous bios of one operation and flags become
/// one request while the task holds a plug; a gap, another operation, other flags or the size limit start a new one.
/// </summary>
public sealed class PlugMergeTests : BlockTestBase
{
    private const int Block = 4096;
    private const int SectorsPerBlock = Block / 512;

    [Test]
    public void ContiguousWrites_UnderAPlug_BackMergeIntoOneRequest()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(4 * Block);

        SubmitPlugged(disk, buf, (ReqOp.Write, 0, ReqFlags.None), (ReqOp.Write, 1, ReqFlags.None),
            (ReqOp.Write, 2, ReqFlags.None), (ReqOp.Write, 3, ReqFlags.None));

        emu_io[] ios = engine.Ios;
        Assert.That(ios, Has.Length.EqualTo(1), "one engine I/O: one request over contiguous memory");
        Assert.That((ios[0].offset, ios[0].len), Is.EqualTo((0UL, (uint)(4 * Block))));
        DiskStat stat = disk.ReadStat();
        Assert.That((stat.WriteIos, stat.WriteMerges, stat.WriteSectors), Is.EqualTo((1L, 3L, 32L)));
    }

    [Test]
    public void BioEndingWhereARequestStarts_FrontMerges()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(2 * Block);

        // Block 1's bio first, then block 0's, each over its own part of one buffer.
        SubmitPlugged(disk, buf, (ReqOp.Read, 1, ReqFlags.None), (ReqOp.Read, 0, ReqFlags.None));

        emu_io[] ios = engine.Ios;
        Assert.That(ios, Has.Length.EqualTo(1));
        Assert.That((ios[0].offset, ios[0].len, ios[0].buf), Is.EqualTo((0UL, (uint)(2 * Block), (ulong)buf.Pointer)));
        Assert.That(disk.ReadStat().ReadMerges, Is.EqualTo(1));
    }

    [Test]
    public void Writes_AcrossAGap_DoNotMerge()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(4 * Block);

        SubmitPlugged(disk, buf, (ReqOp.Write, 0, ReqFlags.None), (ReqOp.Write, 1, ReqFlags.None), (ReqOp.Write, 3, ReqFlags.None));

        Assert.That(engine.Ios.Select(io => (io.offset, io.len)),
            Is.EqualTo(new[] { (0UL, (uint)(2 * Block)), (3UL * Block, (uint)Block) }));
        DiskStat stat = disk.ReadStat();
        Assert.That((stat.WriteIos, stat.WriteMerges), Is.EqualTo((2L, 1L)));
    }

    [Test]
    public void AdjacentReadAndWrite_DoNotMerge()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(2 * Block);

        SubmitPlugged(disk, buf, (ReqOp.Write, 0, ReqFlags.None), (ReqOp.Read, 1, ReqFlags.None));

        Assert.That(engine.Ios.Select(io => ((emu_io_op)io.op, io.offset)),
            Is.EqualTo(new[] { (emu_io_op.EMU_OP_WRITE, 0UL), (emu_io_op.EMU_OP_READ, (ulong)Block) }));
        DiskStat stat = disk.ReadStat();
        Assert.That(stat.ReadMerges + stat.WriteMerges, Is.Zero);
    }

    [Test]
    public void AdjacentWrites_WithDifferentFlags_DoNotMerge()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(2 * Block);

        SubmitPlugged(disk, buf, (ReqOp.Write, 0, ReqFlags.None), (ReqOp.Write, 1, ReqFlags.Sync | ReqFlags.Meta));

        Assert.That(engine.Ios, Has.Length.EqualTo(2));
        Assert.That(disk.ReadStat().WriteMerges, Is.Zero);
    }

    [Test]
    public void ContiguousWrites_WithoutAPlug_AreSeparateRequests()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(2 * Block);

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 0, buf.Pointer, Block), Is.Zero);
        Assert.That(SubmitAndWait(disk, ReqOp.Write, SectorsPerBlock, buf.Pointer + Block, Block), Is.Zero);

        Assert.That(engine.Ios, Has.Length.EqualTo(2));
        Assert.That(disk.ReadStat().WriteIos, Is.EqualTo(2));
    }

    [Test]
    public void Merging_StopsAtMaxSectors()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine, maxSectors: 2 * SectorsPerBlock);
        NativeBuffer buf = Buffer(3 * Block);

        SubmitPlugged(disk, buf, (ReqOp.Write, 0, ReqFlags.None), (ReqOp.Write, 1, ReqFlags.None), (ReqOp.Write, 2, ReqFlags.None));

        Assert.That(engine.Ios.Select(io => io.len), Is.EqualTo(new[] { (uint)(2 * Block), (uint)Block }));
    }

    [Test]
    public void MergedRequest_OverScatteredMemory_IsOneRequestOfSeveralEngineIos()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer a = Buffer(Block);
        NativeBuffer b = Buffer(Block);
        var done = new Completion("bios");
        var plug = new BlkPlug();

        BlkCore.BlkStartPlug(plug);
        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, 0, a.Pointer, Block), done));
        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, SectorsPerBlock, b.Pointer, Block), done));
        Assert.That(plug.Count, Is.EqualTo(1), "the second bio joined the first request");
        BlkCore.BlkFinishPlug(plug);
        WaitFor(done, 2);

        Assert.That(engine.Ios.Select(io => (io.offset, io.buf)),
            Is.EqualTo(new[] { (0UL, (ulong)a.Pointer), ((ulong)Block, (ulong)b.Pointer) }));
        Assert.That(disk.ReadStat().WriteIos, Is.EqualTo(1), "one request");
    }

    [Test]
    public void PlugHoldingRequests_IssuesNothingUntilFinished()
    {
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(3 * Block);
        var done = new Completion("bios");
        var plug = new BlkPlug();

        BlkCore.BlkStartPlug(plug);
        for (int i = 0; i < 3; i += 2)
        {
            BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, i * SectorsPerBlock, buf.Pointer + (i * Block), Block), done));
        }

        Assert.That((engine.Ios.Length, plug.Count), Is.EqualTo((0, 2)));
        BlkCore.BlkFinishPlug(plug);
        WaitFor(done, 2);
        Assert.That(engine.Counters.SubmitCalls, Is.EqualTo(1), "both requests in one engine submission");
    }

    [Test]
    public void TaskSleepingOnItsOwnPluggedWrite_HasThePlugFlushedBySchedule()
    {
        // sched_submit_work(): schedule() issues the plug of a task going to sleep, or it would wait forever for
        // I/O it holds back itself.
        using var task = EmuTask.Adopt("plug-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer buf = Buffer(Block);
        var done = new Completion("bio");
        var plug = new BlkPlug();

        BlkCore.BlkStartPlug(plug);
        BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, 0, buf.Pointer, Block), done));
        Assert.That((engine.Ios.Length, task.Task.Plug), Is.EqualTo((0, (ITaskPlug)plug)), "held in the plug");
        WaitFor(done);

        Assert.That((engine.Ios.Length, plug.Count), Is.EqualTo((1, 0)));
        BlkCore.BlkFinishPlug(plug);
        Assert.That(task.Task.Plug, Is.Null, "blk_finish_plug clears current->plug");
    }

    // Submits one 4 KiB bio per (op, block, flags) over block `block` of buf, under one plug, and waits for all.
    private static void SubmitPlugged(GenDisk disk, NativeBuffer buf, params (ReqOp Op, int Block, ReqFlags Flags)[] bios)
    {
        var done = new Completion("bios");
        var plug = new BlkPlug();
        BlkCore.BlkStartPlug(plug);
        foreach ((ReqOp op, int block, ReqFlags flags) in bios)
        {
            BlkCore.SubmitBio(CompleteOn(NewBio(disk, op, block * SectorsPerBlock, buf.Pointer + (nint)(block * Block), Block, flags), done));
        }

        BlkCore.BlkFinishPlug(plug);
        WaitFor(done, bios.Length);
    }
}
