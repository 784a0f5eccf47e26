namespace Emu.Interop.Tests;

/// <summary>
/// The ring under Emu's block layer, with each engine: O_DIRECT data round trips, completions carry their
/// user_data back, and a full queue accepts only what fits.
/// </summary>
[TestFixture(IoEngine.IoUring)]
[TestFixture(IoEngine.Psync)]
public sealed class RingTests(IoEngine engine)
{
    private const int Block = 4096;
    private const long TimeoutNs = 10_000_000_000;

    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Repo.CreateScratchDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void WriteThenRead_WithODirect_ReturnsTheDataWritten()
    {
        using Ring ring = CreateRing(8);
        using BlockDevice dev = BlockDevice.Open(Path.Combine(_dir, "disk.img"), BlockDeviceOpenFlags.Create, 1 << 20);
        using NativeBuffer written = NativeBuffer.Allocate(2 * Block);
        using NativeBuffer read = NativeBuffer.Allocate(2 * Block);
        BlockDeviceTests.Pattern(2 * Block, seed: 11).CopyTo(written.Span);
        int fd = dev.Handle.DangerousGetFd();

        Complete(ring, Io(emu_io_op.EMU_OP_WRITE, fd, offset: Block, written, userData: 21), expectedRes: 2 * Block);
        Complete(ring, Io(emu_io_op.EMU_OP_FSYNC, fd, offset: 0, null, userData: 22), expectedRes: 0);
        Complete(ring, Io(emu_io_op.EMU_OP_READ, fd, offset: Block, read, userData: 23), expectedRes: 2 * Block);

        Assert.That(read.Span.SequenceEqual(written.Span), Is.True, "data read back");
        var peeked = new byte[2 * Block];
        Assert.That(BlockDevice.Peek(dev.Path, Block, peeked), Is.EqualTo(2 * Block));
        Assert.That(peeked.AsSpan().SequenceEqual(written.Span), Is.True, "data on the file, seen through the page cache");
    }

    [Test]
    public void RegisterFiles_ThenFixedFileWrite_WritesThroughTheTableIndex()
    {
        using Ring ring = CreateRing(4);
        using BlockDevice dev = BlockDevice.Open(Path.Combine(_dir, "disk.img"), BlockDeviceOpenFlags.Create, 1 << 20);
        using NativeBuffer buffer = NativeBuffer.Allocate(Block);
        buffer.Span.Fill(0x5A);

        Assert.That(ring.RegisterFiles([dev.Handle.DangerousGetFd()]), Is.Zero);
        emu_io io = Io(emu_io_op.EMU_OP_WRITE, fd: 0, offset: 0, buffer, userData: 1);
        io.flags = (ushort)emu_io_flags.EMU_IO_FIXED_FILE;
        Complete(ring, io, expectedRes: Block);

        var peeked = new byte[Block];
        BlockDevice.Peek(dev.Path, 0, peeked);
        Assert.That(peeked, Is.All.EqualTo(0x5A));
    }

    [Test]
    public void RegisterBuffers_ThenFixedBufferRead_FillsTheRegisteredBuffer()
    {
        using Ring ring = CreateRing(4);
        string path = Path.Combine(_dir, "disk.img");
        File.WriteAllBytes(path, BlockDeviceTests.Pattern(1 << 20, seed: 5));
        using BlockDevice dev = BlockDevice.Open(path, BlockDeviceOpenFlags.None, 0);
        using NativeBuffer buffer = NativeBuffer.Allocate(Block);

        Assert.That(ring.RegisterBuffers([new emu_iovec { @base = (ulong)buffer.Pointer, len = Block }]), Is.Zero);
        emu_io io = Io(emu_io_op.EMU_OP_READ, dev.Handle.DangerousGetFd(), offset: 3 * Block, buffer, userData: 9);
        io.flags = (ushort)emu_io_flags.EMU_IO_FIXED_BUFFER;
        io.buf_index = 0;
        Complete(ring, io, expectedRes: Block);

        Assert.That(buffer.Span.SequenceEqual(File.ReadAllBytes(path).AsSpan(3 * Block, Block)), Is.True);
    }

    [Test]
    public void Submit_BeyondWhatTheRingHolds_AcceptsWhatFitsThenReturnsMinusEagain()
    {
        using Ring ring = CreateRing(4);
        Span<emu_io> nops = stackalloc emu_io[16];
        for (int i = 0; i < nops.Length; i++)
            nops[i] = new emu_io { op = (ushort)emu_io_op.EMU_OP_NOP, user_data = (ulong)i, fd = -1 };

        int inFlight = 0;
        int rc;
        while ((rc = ring.Submit(nops[..(int)ring.Entries])) > 0)
        {
            Assert.That(rc, Is.LessThanOrEqualTo((int)ring.Entries));
            inFlight += rc;
            Assert.That(inFlight, Is.LessThanOrEqualTo(64), "the ring never filled");
        }

        Assert.That(rc, Is.EqualTo(-Errno.EAGAIN));
        Assert.That(inFlight, Is.GreaterThanOrEqualTo((int)ring.Entries));
        Span<emu_completion> cqes = stackalloc emu_completion[64];
        int reaped = 0;
        while (reaped < inFlight)
        {
            int n = ring.Reap(cqes, 1, TimeoutNs);
            Assert.That(n, Is.Positive, "reap");
            reaped += n;
        }
        Assert.That(reaped, Is.EqualTo(inFlight));
        Assert.That(ring.Submit(nops[..1]), Is.EqualTo(1), "room again once reaped");
    }

    [Test]
    public void SubmitAndReap_AllocateNothingPerCall()
    {
        using Ring ring = CreateRing(8);
        Span<emu_io> nops = stackalloc emu_io[4];
        nops.Fill(new emu_io { op = (ushort)emu_io_op.EMU_OP_NOP, fd = -1 });
        Span<emu_completion> cqes = stackalloc emu_completion[4];
        SubmitAndReapAll(ring, nops, cqes);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
            SubmitAndReapAll(ring, nops, cqes);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.That(allocated, Is.Zero, "bytes allocated by 100 submit/reap rounds");
    }

    [Test]
    public void Reap_WithNothingInFlight_ReturnsMinusEtimeAfterTheTimeout()
    {
        using Ring ring = CreateRing(4);
        Span<emu_completion> cqes = stackalloc emu_completion[4];

        Assert.That(ring.Reap(cqes, 1, 1_000_000), Is.EqualTo(-Errno.ETIME));
        Assert.That(ring.Reap(cqes, 0, 0), Is.Zero, "no wait asked: nothing to copy");
    }

    [Test]
    public void Create_RoundsEntriesUpToAPowerOfTwoAndKeepsTheEngineAskedFor()
    {
        using Ring ring = CreateRing(5);

        Assert.That(ring.Entries, Is.EqualTo(8u));
        Assert.That(ring.Engine, Is.EqualTo(engine));
        Assert.That(ring.FallbackErrno, Is.Zero);
    }

    [Test]
    public void Create_Auto_ChoosesIoUringOrSaysWhyNot()
    {
        using Ring ring = Ring.Create(4, IoEngine.Auto);

        Assert.That(ring.Engine, Is.AnyOf(IoEngine.IoUring, IoEngine.Psync));
        Assert.That(ring.FallbackErrno != 0, Is.EqualTo(ring.Engine == IoEngine.Psync), $"engine {ring.Engine}, fallback errno {ring.FallbackErrno}");
    }

    private Ring CreateRing(uint entries)
    {
        try
        {
            return Ring.Create(entries, engine);
        }
        catch (ShimException e) when (engine == IoEngine.IoUring && e.Errno is Errno.ENOSYS or Errno.EPERM)
        {
            Assume.That(false, $"io_uring is unavailable here: {e.Message}");
            throw;
        }
    }

    private static emu_io Io(emu_io_op op, int fd, long offset, NativeBuffer? buffer, ulong userData) => new()
    {
        user_data = userData,
        offset = (ulong)offset,
        buf = buffer is null ? 0 : (ulong)buffer.Pointer,
        len = buffer is null ? 0 : (uint)buffer.Length,
        fd = fd,
        op = (ushort)op,
    };

    private static void SubmitAndReapAll(Ring ring, ReadOnlySpan<emu_io> ios, Span<emu_completion> cqes)
    {
        if (ring.Submit(ios) != ios.Length)
            Assert.Fail("submit");
        for (int reaped = 0; reaped < ios.Length;)
        {
            int n = ring.Reap(cqes, 1, TimeoutNs);
            if (n <= 0)
                Assert.Fail($"reap returned {n}");
            reaped += n;
        }
    }

    private static void Complete(Ring ring, emu_io io, int expectedRes)
    {
        Assert.That(ring.Submit([io]), Is.EqualTo(1), $"submit {(emu_io_op)io.op}");
        Span<emu_completion> cqes = stackalloc emu_completion[2];
        Assert.That(ring.Reap(cqes, 1, TimeoutNs), Is.EqualTo(1), $"reap {(emu_io_op)io.op}");
        Assert.That(cqes[0].user_data, Is.EqualTo(io.user_data));
        Assert.That(cqes[0].res, Is.EqualTo(expectedRes), $"res of {(emu_io_op)io.op}: {(cqes[0].res < 0 ? Errno.Message(cqes[0].res) : "")}");
    }
}
