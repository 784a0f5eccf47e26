namespace Emu.Block.Tests;

/// <summary>The submission and completion paths allocate nothing per I/O once warm (pooled bios, preallocated requests).</summary>
public sealed class AllocationTests : BlockTestBase
{
    private const int Block = 4096;
    private const int Batch = 8;

    private sealed class Counter
    {
        public int Done;
    }

    private static readonly Action<Bio> s_endIo = static bio =>
    {
        ((Counter)bio.BiPrivate!).Done++;
        bio.Put();
    };

    [Test]
    public void SubmitAndInlineCompletion_AllocateNothingPerIo()
    {
        using var host = EmuTask.Adopt("alloc-test");
        GenDisk disk = CreateDisk(new NullEngine(64 << 20), queueDepth: 32);
        NativeBuffer buf = Buffer(Batch * Block);
        var bios = new BioSet(Batch, 1);
        var plug = new BlkPlug();
        var counter = new Counter();

        RunBatches(disk, buf, bios, plug, counter, 200);
        long before = GC.GetAllocatedBytesForCurrentThread();
        RunBatches(disk, buf, bios, plug, counter, 1000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.That(counter.Done, Is.EqualTo(1200 * Batch));
        Assert.That(allocated, Is.Zero, "bytes allocated by 8000 submit_bio + bi_end_io");
        Assert.That(bios.Created, Is.EqualTo(Batch), "bios come back to the pool");
    }

    [Test]
    public void SubmitToTheMemEngine_AllocatesNothingOnTheSubmittingTask()
    {
        using var host = EmuTask.Adopt("alloc-test");
        GenDisk disk = CreateDisk(new MemEngine(1 << 20), queueDepth: 32);
        NativeBuffer buf = Buffer(Block);
        var bios = new BioSet(1, 1);
        var done = new Completion("bio");

        for (int i = 0; i < 200; i++)
        {
            ReadOnce(disk, buf, bios, done, i);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 2000; i++)
        {
            ReadOnce(disk, buf, bios, done, i);
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero, "bytes allocated by 2000 submit_bio + waits");
    }

    private static void ReadOnce(GenDisk disk, NativeBuffer buf, BioSet bios, Completion done, int i)
    {
        Bio bio = bios.Alloc(1);
        bio.BiDisk = disk;
        bio.BiOp = ReqOp.Read;
        bio.BiSector = (i % 256) * 8;
        bio.AddBuffer(buf.Pointer, Block);
        CompleteOn(bio, done);
        BlkCore.SubmitBio(bio);
        done.WaitForCompletion();
        bio.Put();
    }

    private static void RunBatches(GenDisk disk, NativeBuffer buf, BioSet bios, BlkPlug plug, Counter counter, int batches)
    {
        for (int b = 0; b < batches; b++)
        {
            BlkCore.BlkStartPlug(plug);
            for (int i = 0; i < Batch; i++)
            {
                Bio bio = bios.Alloc(1);
                bio.BiDisk = disk;
                bio.BiOp = (i & 1) == 0 ? ReqOp.Read : ReqOp.Write;
                bio.BiSector = ((b * 37) + (i * 16)) % 100_000;
                bio.AddBuffer(buf.Pointer + (i * Block), Block);
                bio.BiEndIo = s_endIo;
                bio.BiPrivate = counter;
                BlkCore.SubmitBio(bio);
            }

            BlkCore.BlkFinishPlug(plug);
        }
    }
}
