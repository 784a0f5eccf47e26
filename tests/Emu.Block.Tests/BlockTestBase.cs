// Shared plumbing of the block-layer tests: a fresh kernel log per test, hooks reset afterwards, disks created
// and disposed per test, bios submitted and waited for through the kernel's sleeping path, and scratch files on
// the repository's (ext4, O_DIRECT-capable) filesystem.
namespace Emu.Block.Tests;

public abstract class BlockTestBase
{
    // bi_end_io of WaitBio: completes the Completion in bi_private (cached: no closure per I/O).
    private static readonly Action<Bio> s_completeEndIo = static bio => ((Completion)bio.BiPrivate!).Complete();

    private readonly List<IDisposable> _disposables = [];
    private IKernelLog? _savedSink;

    protected KernelLog Log { get; private set; } = null!;

    [SetUp]
    public void InstallLog()
    {
        _savedSink = Klog.Sink;
        Log = new KernelLog();
        Klog.Sink = Log;
    }

    [TearDown]
    public void DisposeAndRestore()
    {
        for (int i = _disposables.Count - 1; i >= 0; i--)
        {
            _disposables[i].Dispose();
        }

        _disposables.Clear();
        Klog.Sink = _savedSink!;
        Sched.SleepObserver = null;
        Sched.SetPointHook(null);
    }

    /// <summary>Disposed after the test, in reverse order of registration.</summary>
    protected T Track<T>(T disposable)
        where T : IDisposable
    {
        _disposables.Add(disposable);
        return disposable;
    }

    /// <summary>A disk over <paramref name="engine"/>, one hardware queue unless said otherwise, disposed after the test.</summary>
    protected GenDisk CreateDisk(BlkEngine engine, int queueDepth = 16, int nrHwQueues = 1, int maxSectors = Blk.DefaultMaxSectors,
        string name = "emu0") =>
        Track(GenDisk.Create(name, engine, new BlkMqTagSet { NrHwQueues = nrHwQueues, QueueDepth = queueDepth, MaxSectors = maxSectors }));

    /// <summary>Native memory disposed after the test.</summary>
    protected NativeBuffer Buffer(long size) => Track(NativeBuffer.Allocate(size));

    /// <summary>A bio for <paramref name="disk"/> over <paramref name="length"/> bytes at <paramref name="address"/>.</summary>
    protected static Bio NewBio(GenDisk disk, ReqOp op, long sector, nint address, int length, ReqFlags flags = ReqFlags.None)
    {
        Bio bio = Bio.Alloc(1);
        bio.BiDisk = disk;
        bio.BiOp = op;
        bio.BiFlags = flags;
        bio.BiSector = sector;
        if (length > 0)
        {
            bio.AddBuffer(address, (uint)length);
        }

        return bio;
    }

    /// <summary>Makes <paramref name="bio"/> complete <paramref name="done"/> from bi_end_io.</summary>
    protected static Bio CompleteOn(Bio bio, Completion done)
    {
        bio.BiEndIo = s_completeEndIo;
        bio.BiPrivate = done;
        return bio;
    }

    /// <summary>Waits (kernel sleeping path) for <paramref name="done"/>; fails the test on timeout.</summary>
    protected static void WaitFor(Completion done, int count = 1)
    {
        for (int i = 0; i < count; i++)
        {
            Assert.That(done.WaitForCompletionTimeout(HandshakeTimeoutMs), Is.Not.Zero, $"{done.Name}: bi_end_io never ran");
        }
    }

    /// <summary>Submits one bio and waits for it; returns its bi_error. Must run on an EmuTask.</summary>
    protected static int SubmitAndWait(GenDisk disk, ReqOp op, long sector, nint address, int length, ReqFlags flags = ReqFlags.None)
    {
        var done = new Completion("bio");
        Bio bio = CompleteOn(NewBio(disk, op, sector, address, length, flags), done);
        BlkCore.SubmitBio(bio);
        WaitFor(done);
        int error = bio.BiError;
        bio.Put();
        return error;
    }

}
