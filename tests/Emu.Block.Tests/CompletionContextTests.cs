namespace Emu.Block.Tests;

/// <summary>
/// Completion context (block/blk-mq.c v4.4 blk_mq_complete_request, bio_endio): bi_end_io runs on the hardware
/// queue's completion thread in interrupt context, where a sleep is "BUG: scheduling while atomic" and never a hang.
/// </summary>
public sealed class CompletionContextTests : BlockTestBase
{
    private const int Block = 4096;

    private sealed class Seen
    {
        public readonly Completion Done = new("bio");
        public EmuTask? Task;
        public bool InIrq;
        public string[] Frames = [];
    }

    [Test]
    public void EndIo_RunsOnTheHardwareQueuesCompletionThread_InIrqContext()
    {
        using var host = EmuTask.Adopt("irq-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        var seen = new Seen();
        Bio bio = NewBio(disk, ReqOp.Read, 0, buf.Pointer, Block);
        bio.BiPrivate = seen;
        bio.BiEndIo = static b =>
        {
            var s = (Seen)b.BiPrivate!;
            s.Task = EmuTask.Current;
            s.InIrq = s.Task?.InIrq ?? false;
            s.Frames = s.Task?.Frames ?? [];
            s.Done.Complete();
        };

        BlkCore.SubmitBio(bio);
        WaitFor(seen.Done);

        Assert.That(seen.Task, Is.SameAs(disk.IrqTasks[0]));
        Assert.That(seen.Task!.Comm, Is.EqualTo("irq/emu0-q0"));
        Assert.That(seen.InIrq, Is.True, "in_irq() inside bi_end_io");
        Assert.That(seen.Frames, Is.SupersetOf(new[] { "blk_update_request", "blk_mq_complete_request", "irq_thread" }));
        Assert.That(disk.IrqTasks[0].InIrq, Is.False, "interrupt context ends with the handler");
    }

    [Test]
    public void SleepInEndIo_IsReportedAsSchedulingWhileAtomic_AndDoesNotHang()
    {
        using var host = EmuTask.Adopt("irq-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        long bugsBefore = Klog.BugsReported;
        var done = new Completion("bio");
        Bio bio = NewBio(disk, ReqOp.Write, 0, buf.Pointer, Block);
        bio.BiPrivate = done;
        bio.BiEndIo = static b =>
        {
            // A bi_end_io that waits, as a buggy filesystem's might.
            Sched.SetCurrentState(TaskState.Uninterruptible);
            Sched.Schedule();
            ((Completion)b.BiPrivate!).Complete();
        };

        BlkCore.SubmitBio(bio);
        WaitFor(done);

        Assert.That(Log.ToString(), Does.Contain("BUG: scheduling while atomic: irq/emu0-q0/"));
        Assert.That(Klog.BugsReported, Is.GreaterThan(bugsBefore));
        Assert.That(disk.IrqTasks[0].State, Is.EqualTo(TaskState.Running).Or.EqualTo(TaskState.Interruptible));

        // The completion thread still works afterwards.
        Assert.That(SubmitAndWait(disk, ReqOp.Read, 0, buf.Pointer, Block), Is.Zero);
    }

    [Test]
    public void NullEngine_CompletesOnTheSubmittingTask_InIrqContext()
    {
        using var host = EmuTask.Adopt("null-test");
        GenDisk disk = CreateDisk(new NullEngine(1 << 20));
        NativeBuffer buf = Buffer(Block);
        var seen = new Seen();
        Bio bio = NewBio(disk, ReqOp.Read, 0, buf.Pointer, Block);
        bio.BiPrivate = seen;
        bio.BiEndIo = static b =>
        {
            var s = (Seen)b.BiPrivate!;
            s.Task = EmuTask.Current;
            s.InIrq = s.Task?.InIrq ?? false;
            s.Done.Complete();
        };

        BlkCore.SubmitBio(bio);

        Assert.That(seen.Done.CompletionDone, Is.True, "complete before submit_bio returned");
        Assert.That(seen.Task, Is.SameAs(host.Task));
        Assert.That(seen.InIrq, Is.True);
        Assert.That(host.Task.InIrq, Is.False);
    }

    private sealed class Chain
    {
        public readonly Completion Done = new("second bio");
        public NativeBuffer? Buffer;
        public int SecondError = 1;
    }

    [Test]
    public void EndIo_SubmittingAnotherBio_FromCompletionContext_CompletesIt()
    {
        using var host = EmuTask.Adopt("irq-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20));
        var chain = new Chain { Buffer = Buffer(2 * Block) };
        Bio first = NewBio(disk, ReqOp.Write, 0, chain.Buffer.Pointer, Block);
        first.BiPrivate = chain;
        first.BiEndIo = static b =>
        {
            // A retry or follow-up I/O issued from bi_end_io (tags are free, so nothing sleeps).
            var c = (Chain)b.BiPrivate!;
            Bio second = NewBio(b.BiDisk!, ReqOp.Read, 0, c.Buffer!.Pointer + Block, Block);
            second.BiPrivate = c;
            second.BiEndIo = static s =>
            {
                var cc = (Chain)s.BiPrivate!;
                cc.SecondError = s.BiError;
                cc.Done.Complete();
            };
            BlkCore.SubmitBio(second);
        };
        chain.Buffer.Span[..Block].Fill(0x77);

        BlkCore.SubmitBio(first);
        WaitFor(chain.Done);

        Assert.That(chain.SecondError, Is.Zero);
        Assert.That(chain.Buffer.Span.Slice(Block, Block).ToArray(), Is.All.EqualTo(0x77), "the follow-up read saw the write");
    }
}
