namespace Emu.Block.Tests;

/// <summary>
/// Tag exhaustion (block/blk-mq-tag.c v4.4 bt_get): a submitter that finds every tag of its hardware queue in use
/// sleeps uninterruptibly through schedule() inside blk_mq_get_tag, visible to the hung-task detector, until a
/// completion frees a tag; before sleeping it flushes its own plug, whose requests hold tags.
/// </summary>
public sealed class TagTests : BlockTestBase
{
    private const int Block = 4096;

    [Test]
    public void Submitter_OutOfTags_SleepsUninterruptiblyInBlkMqGetTag_UntilACompletionFreesOne()
    {
        using var host = EmuTask.Adopt("tag-test");
        var engine = new TestEngine(1 << 20);
        engine.CloseGate();
        GenDisk disk = CreateDisk(engine, queueDepth: 2);
        NativeBuffer buf = Buffer(3 * Block);
        var done = new Completion("bios");
        int submitted = 0;

        EmuTask submitter = EmuTask.Run("fdm-stress", () =>
        {
            for (int i = 0; i < 3; i++)
            {
                BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, i * 16, buf.Pointer + (i * Block), Block), done));
                Volatile.Write(ref submitted, i + 1);
            }
        });

        WaitUntil(() => submitter.State == TaskState.Uninterruptible && submitter.Nvcsw > 0, "the submitter sleeps");
        Assert.That(Volatile.Read(ref submitted), Is.EqualTo(2), "two bios got the two tags");
        Assert.That(engine.Ios, Has.Length.EqualTo(2), "both are in flight");
        Assert.That(disk.Queue.TagsInUse, Is.EqualTo(2));
        Assert.That(submitter.WaitingOn?.Describe(), Is.EqualTo("tag of emu0 hctx 0 (queue_depth 2)"));
        Assert.That(submitter.Frames, Is.SupersetOf(new[] { "schedule", "io_schedule_timeout", "bt_get", "blk_mq_get_tag", "blk_mq_make_request", "generic_make_request", "submit_bio" }));
        Assert.That(Array.IndexOf(submitter.Frames, "blk_mq_get_tag"), Is.LessThan(Array.IndexOf(submitter.Frames, "submit_bio")),
            "innermost first: blk_mq_get_tag is called from submit_bio");

        engine.Release(1);
        JoinOk(submitter);
        Assert.That(Volatile.Read(ref submitted), Is.EqualTo(3), "the freed tag let the third bio in");
        Assert.That(submitter.WaitingOn, Is.Null);

        engine.Release();
        WaitFor(done, 3);
        Assert.That(disk.Queue.TagsInUse, Is.Zero);
    }

    [Test]
    public void SubmitterOutOfTags_WithItsRequestsInItsPlug_FlushesThePlugInsteadOfSleepingForever()
    {
        using var host = EmuTask.Adopt("tag-test");
        var engine = new TestEngine(1 << 20);
        GenDisk disk = CreateDisk(engine, queueDepth: 2);
        NativeBuffer buf = Buffer(3 * Block);
        var done = new Completion("bios");
        var plug = new BlkPlug();

        BlkCore.BlkStartPlug(plug);
        for (int i = 0; i < 3; i++)
        {
            // Sectors 0, 16, 32: no merges, so each bio needs a tag; the first two sit in the plug.
            BlkCore.SubmitBio(CompleteOn(NewBio(disk, ReqOp.Write, i * 16, buf.Pointer + (i * Block), Block), done));
        }

        BlkCore.BlkFinishPlug(plug);
        WaitFor(done, 3);

        Assert.That(engine.Ios, Has.Length.EqualTo(3));
        Assert.That(disk.ReadStat().WriteIos, Is.EqualTo(3));
    }

    [Test]
    public void ManySubmitters_SharingFourTags_AllComplete()
    {
        using var host = EmuTask.Adopt("tag-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20), queueDepth: 4);
        NativeBuffer buf = Buffer(8 * Block);
        var tasks = new EmuTask[8];
        for (int t = 0; t < tasks.Length; t++)
        {
            int job = t;
            tasks[t] = EmuTask.Run($"job{t}", () =>
            {
                for (int i = 0; i < 50; i++)
                {
                    Assert.That(SubmitAndWait(disk, i % 2 == 0 ? ReqOp.Write : ReqOp.Read, job * 8, buf.Pointer + (job * Block), Block), Is.Zero);
                }
            });
        }

        foreach (EmuTask task in tasks)
        {
            JoinOk(task);
        }

        DiskStat stat = disk.ReadStat();
        Assert.That((stat.ReadIos, stat.WriteIos, stat.InFlight), Is.EqualTo((200L, 200L, 0L)));
    }
}
