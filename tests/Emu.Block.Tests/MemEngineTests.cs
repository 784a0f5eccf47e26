namespace Emu.Block.Tests;

/// <summary>The mem engine through the whole block layer: data written comes back, large and scattered bios too.</summary>
public sealed class MemEngineTests : BlockTestBase
{
    [Test]
    public void WriteThenRead_ThroughTheQueue_ReturnsTheDataWritten()
    {
        using var task = EmuTask.Adopt("mem-test");
        var engine = new MemEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        NativeBuffer written = Buffer(8192);
        NativeBuffer read = Buffer(8192);
        new Random(5).NextBytes(written.Span);

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 16, written.Pointer, 8192), Is.Zero);
        Assert.That(SubmitAndWait(disk, ReqOp.Read, 16, read.Pointer, 8192), Is.Zero);

        Assert.That(read.Span.SequenceEqual(written.Span), Is.True, "data read back");
        Assert.That(engine.Data(16 * 512, 8192).SequenceEqual(written.Span), Is.True, "data on the RAM disk at sector 16");
    }

    [Test]
    public void Write_LargerThanMaxSectors_IsSplitAndStillLandsWhole()
    {
        using var task = EmuTask.Adopt("mem-test");
        var engine = new MemEngine(4 << 20);
        GenDisk disk = CreateDisk(engine, maxSectors: 64); // 32 KiB requests
        NativeBuffer written = Buffer(200 * 1024);
        new Random(7).NextBytes(written.Span);

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 8, written.Pointer, 200 * 1024), Is.Zero);

        Assert.That(engine.Data(8 * 512, 200 * 1024).SequenceEqual(written.Span), Is.True);
        Assert.That(disk.ReadStat().WriteIos, Is.EqualTo(7), "200 KiB in 32 KiB requests: 6 full and one of 8 KiB");
        Assert.That(engine.Counters.Writes, Is.EqualTo(7));
    }

    [Test]
    public void Read_IntoScatteredPages_FillsEachPageFromItsSectors()
    {
        using var task = EmuTask.Adopt("mem-test");
        var engine = new MemEngine(1 << 20);
        GenDisk disk = CreateDisk(engine);
        new Random(9).NextBytes(engine.Data(0, 3 * 4096));
        NativeBuffer a = Buffer(4096);
        NativeBuffer b = Buffer(4096);
        NativeBuffer c = Buffer(4096);
        var pages = new[] { new Page(null, 257, 0, a.Pointer), new Page(null, 257, 1, b.Pointer), new Page(null, 257, 2, c.Pointer) };

        var done = new Completion("bio");
        Bio bio = CompleteOn(Bio.Alloc(3), done);
        bio.BiDisk = disk;
        bio.BiOp = ReqOp.Read;
        foreach (Page page in pages)
        {
            Assert.That(bio.AddPage(page, 4096, 0), Is.EqualTo(4096u));
        }

        BlkCore.SubmitBio(bio);
        WaitFor(done);

        Assert.That(bio.BiError, Is.Zero);
        Assert.That(a.Span.SequenceEqual(engine.Data(0, 4096)), Is.True, "page 0");
        Assert.That(b.Span.SequenceEqual(engine.Data(4096, 4096)), Is.True, "page 1");
        Assert.That(c.Span.SequenceEqual(engine.Data(8192, 4096)), Is.True, "page 2");
        bio.Put();
    }

    [Test]
    public void Read_BeyondCapacity_FailsWithEio()
    {
        using var task = EmuTask.Adopt("mem-test");
        GenDisk disk = CreateDisk(new MemEngine(64 * 1024));
        NativeBuffer buf = Buffer(4096);

        Assert.That(SubmitAndWait(disk, ReqOp.Read, 127, buf.Pointer, 4096), Is.EqualTo(-5));
        Assert.That(Log.ToString(), Does.Contain("attempt to access beyond end of device"));
    }
}
