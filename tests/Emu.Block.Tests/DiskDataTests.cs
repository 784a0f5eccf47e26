using System.Buffers.Binary;

namespace Emu.Block.Tests;

/// <summary>
/// Real O_DIRECT I/O through the block layer on a file on the repository's ext4: random blocks written with a
/// CRC-32C and a version stamp, some rewritten, every block read back and verified (io_uring and psync engines).
/// </summary>
[TestFixture("io_uring")]
[TestFixture("psync")]
public sealed class DiskDataTests(string engineName) : BlockTestBase
{
    private const int Block = 4096;
    private const int Blocks = 2048; // an 8 MiB file
    private const int BatchBlocks = 32;

    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Scratch.CreateDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void RandomWritesAndRewrites_ReadBackWithValidChecksums()
    {
        using var host = EmuTask.Adopt("crc-test");
        GenDisk disk = CreateDisk(CreateEngine(), queueDepth: 32);
        Assert.That(disk.Engine.Name, Is.EqualTo(engineName));
        var rng = new Random(20160301);
        int[] version = new int[Blocks];
        NativeBuffer buf = Buffer(BatchBlocks * Block);

        int[] order = Enumerable.Range(0, Blocks).ToArray();
        rng.Shuffle(order);
        for (int i = 0; i < Blocks; i += BatchBlocks)
        {
            WriteBatch(disk, buf, order.AsSpan(i, BatchBlocks), version, rng);
        }

        for (int round = 0; round < 10; round++)
        {
            // Runs of 1-4 adjacent blocks at random places: plugged, they merge into larger requests.
            var batch = new List<int>();
            while (batch.Count < BatchBlocks - 4)
            {
                int start = rng.Next(Blocks - 4);
                for (int b = start; b < start + rng.Next(1, 5); b++)
                {
                    if (!batch.Contains(b))
                    {
                        batch.Add(b);
                    }
                }
            }

            WriteBatch(disk, buf, batch.ToArray(), version, rng);
        }

        Assert.That(SubmitAndWait(disk, ReqOp.Flush, 0, 0, 0), Is.Zero, "cache flush");
        rng.Shuffle(order);
        for (int i = 0; i < Blocks; i += BatchBlocks)
        {
            ReadAndVerifyBatch(disk, buf, order.AsSpan(i, BatchBlocks), version);
        }

        DiskStat stat = disk.ReadStat();
        Assert.That(stat.ReadIos + stat.ReadMerges, Is.EqualTo(Blocks), "every block read once, some in merged requests");
        Assert.That(stat.WriteMerges, Is.GreaterThan(0), "adjacent rewrites merged");
        Assert.That(stat.InFlight, Is.Zero);
    }

    [Test]
    public void PreflushFuaWrite_OnTheFile_Succeeds()
    {
        using var host = EmuTask.Adopt("crc-test");
        GenDisk disk = CreateDisk(CreateEngine());
        NativeBuffer buf = Buffer(Block);
        buf.Span.Fill(0x42);

        Assert.That(SubmitAndWait(disk, ReqOp.Write, 64, buf.Pointer, Block, ReqFlags.Preflush | ReqFlags.Fua), Is.Zero);

        EngineCounters counters = disk.Engine.Counters;
        Assert.That((counters.Flushes, counters.FuaWrites), Is.EqualTo((1L, 1L)));
        var peeked = new byte[Block];
        BlockDevice.Peek(Path.Combine(_dir, "disk.img"), 64 * 512, peeked);
        Assert.That(peeked, Is.All.EqualTo(0x42));
    }

    private BlkEngine CreateEngine()
    {
        if (engineName == "io_uring")
        {
            try
            {
                Ring.Create(4, IoEngine.IoUring).Dispose();
            }
            catch (ShimException e)
            {
                Assume.That(false, $"io_uring is unavailable here: {e.Message}");
            }
        }

        BlockDevice device = Track(BlockDevice.Open(Path.Combine(_dir, "disk.img"), BlockDeviceOpenFlags.Create, Blocks * Block));
        Assume.That(device.IsMemoryBacked, Is.False, "needs a disk-backed filesystem for O_DIRECT");
        return engineName == "io_uring" ? new UringEngine(device) : new PsyncEngine(device);
    }

    // Fills each block of `blocks` with random bytes stamped (block, version) and a CRC-32C, and writes them under
    // one plug; buffer slot i holds blocks[i], so blocks adjacent on disk and in the list are adjacent in memory.
    private static void WriteBatch(GenDisk disk, NativeBuffer buf, ReadOnlySpan<int> blocks, int[] version, Random rng)
    {
        var done = new Completion("writes");
        var bios = new Bio[blocks.Length];
        var plug = new BlkPlug();
        BlkCore.BlkStartPlug(plug);
        for (int i = 0; i < blocks.Length; i++)
        {
            int block = blocks[i];
            Span<byte> data = buf.Span.Slice(i * Block, Block);
            rng.NextBytes(data);
            BinaryPrimitives.WriteInt32LittleEndian(data, block);
            BinaryPrimitives.WriteInt32LittleEndian(data[4..], ++version[block]);
            BinaryPrimitives.WriteUInt32LittleEndian(data[(Block - 4)..], Crc32c.Compute(data[..(Block - 4)]));
            bios[i] = CompleteOn(NewBio(disk, ReqOp.Write, (long)block * 8, buf.Pointer + (i * Block), Block), done);
            BlkCore.SubmitBio(bios[i]);
        }

        BlkCore.BlkFinishPlug(plug);
        WaitFor(done, blocks.Length);
        foreach (Bio bio in bios)
        {
            Assert.That(bio.BiError, Is.Zero);
            bio.Put();
        }
    }

    private static void ReadAndVerifyBatch(GenDisk disk, NativeBuffer buf, ReadOnlySpan<int> blocks, int[] version)
    {
        var done = new Completion("reads");
        var bios = new Bio[blocks.Length];
        var plug = new BlkPlug();
        buf.Span.Clear();
        BlkCore.BlkStartPlug(plug);
        for (int i = 0; i < blocks.Length; i++)
        {
            bios[i] = CompleteOn(NewBio(disk, ReqOp.Read, (long)blocks[i] * 8, buf.Pointer + (i * Block), Block), done);
            BlkCore.SubmitBio(bios[i]);
        }

        BlkCore.BlkFinishPlug(plug);
        WaitFor(done, blocks.Length);
        for (int i = 0; i < blocks.Length; i++)
        {
            Assert.That(bios[i].BiError, Is.Zero);
            bios[i].Put();
            ReadOnlySpan<byte> data = buf.Span.Slice(i * Block, Block);
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(data[(Block - 4)..]), Is.EqualTo(Crc32c.Compute(data[..(Block - 4)])),
                $"checksum of block {blocks[i]}");
            Assert.That((BinaryPrimitives.ReadInt32LittleEndian(data), BinaryPrimitives.ReadInt32LittleEndian(data[4..])),
                Is.EqualTo((blocks[i], version[blocks[i]])), $"block {blocks[i]} holds its latest version");
        }
    }
}
