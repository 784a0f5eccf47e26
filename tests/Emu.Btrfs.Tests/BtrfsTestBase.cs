// Shared plumbing of the btrfs tests: a fresh kernel log per test, the test thread adopted as an emulated task,
// hooks reset afterwards, a filesystem mounted on a RAM disk (mem engine) when a test asks for one, and
// condition-based handshakes between tasks instead of sleeps.
using Emu.Block;
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public abstract class BtrfsTestBase
{
    private readonly List<EmuTask> _tasks = new();
    private readonly List<PauseGate> _gates = new();
    private IKernelLog? _savedSink;
    private AdoptedTask? _adopted;
    private GenDisk? _disk;
    private WorkqueueSystem? _wqSystem;

    protected KernelLog Log { get; private set; } = null!;

    /// <summary>The filesystem of <see cref="Mount"/>.</summary>
    protected BtrfsFs Fs { get; private set; } = null!;

    /// <summary>The RAM disk under <see cref="Fs"/>.</summary>
    protected GenDisk Disk => _disk!;

    /// <summary>The mem engine's bytes (the disk contents), for corrupting sectors.</summary>
    protected MemEngine Engine => (MemEngine)_disk!.Engine;

    [SetUp]
    public void SetUpKernel()
    {
        _savedSink = Klog.Sink;
        Log = new KernelLog();
        Klog.Sink = Log;
        _adopted = EmuTask.Adopt("btrfs-test");
    }

    [TearDown]
    public void TearDownKernel()
    {
        Sched.SetPointDetailHook(null);
        Sched.SetPointHook(null);
        foreach (PauseGate gate in _gates)
        {
            gate.Release();
        }

        _gates.Clear();
        try
        {
            EmuTask[] tasks = _tasks.ToArray();
            _tasks.Clear();
            foreach (EmuTask task in tasks)
            {
                Assert.That(task.Join(HandshakeTimeoutMs), Is.True, $"{task} did not exit");
            }

            Fs?.Unmount();
            _disk?.Dispose();
            _wqSystem?.Dispose();
            Fs = null!;
            _disk = null;
            _wqSystem = null;
        }
        finally
        {
            _adopted?.Dispose();
            Klog.Sink = _savedSink!;
            Sched.SleepObserver = null;
        }
    }

    /// <summary>Mounts a fresh filesystem on a 64 MiB RAM disk.</summary>
    protected BtrfsFs Mount(BtrfsMode mode = BtrfsMode.Unpatched, long pageCacheBytes = 16L * 1024 * 1024, int dirtyWritebackCentisecs = 0)
    {
        _disk = GenDisk.Create("emu0", new MemEngine(64L * 1024 * 1024), new BlkMqTagSet { NrHwQueues = 1, QueueDepth = 32 });
        _wqSystem = new WorkqueueSystem();
        Fs = BtrfsFs.Mount(_disk, new BtrfsMountOptions
        {
            Mode = mode,
            PageCacheBytes = pageCacheBytes,
            WorkqueueSystem = _wqSystem,
            DirtyWritebackCentisecs = dirtyWritebackCentisecs,
        });
        return Fs;
    }

    /// <summary>Starts a task running <paramref name="body"/>; the test joins it in tear-down.</summary>
    protected EmuTask Run(string comm, Action body)
    {
        EmuTask task = EmuTask.Run(comm, body);
        _tasks.Add(task);
        return task;
    }

    /// <summary>A deterministic pattern: byte i of the buffer is (seed + i * 7) mod 251.</summary>
    protected static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)((seed + i * 7) % 251);
        }

        return data;
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="pos"/> and asserts it was all written.</summary>
    protected void WriteOk(VfsFile file, byte[] data, long pos) =>
        Assert.That(Fs.VfsWrite(file, data, pos), Is.EqualTo(data.Length), $"write of {data.Length} at {pos}");

    /// <summary>Reads <paramref name="length"/> bytes at <paramref name="pos"/>.</summary>
    protected byte[] ReadAll(VfsFile file, int length, long pos, bool direct = false)
    {
        var buf = new byte[length];
        long n = Fs.VfsRead(file, buf, pos, direct);
        Assert.That(n, Is.EqualTo(length), $"read of {length} at {pos} (direct: {direct})");
        return buf;
    }

    /// <summary>Writes back and drops every cached page of the file, so the next read comes from disk.</summary>
    /// <summary>Asserts that <paramref name="expected"/> appears in <paramref name="frames"/> (innermost first) as one unbroken run.</summary>
    protected static void AssertInOrder(string[] frames, string[] expected)
    {
        int at = Array.IndexOf(frames, expected[0]);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), $"{expected[0]} in {string.Join(", ", frames)}");
        Assert.That(frames.AsSpan(at, Math.Min(expected.Length, frames.Length - at)).ToArray(), Is.EqualTo(expected), string.Join(", ", frames));
    }

    protected static void DropCache(BtrfsInode inode)
    {
        Assert.That(PageCache.FilemapWriteAndWaitRange(inode.Mapping, 0, long.MaxValue), Is.EqualTo(0));
        Assert.That(OrderedData.BtrfsWaitOrderedRange(inode, 0, long.MaxValue), Is.EqualTo(0));
        Assert.That(PageCache.InvalidateInodePages2Range(inode.Mapping, 0, long.MaxValue), Is.EqualTo(0));
        Assert.That(inode.Mapping.NrPagesCount, Is.EqualTo(0));
    }

    /// <summary>Installs a detail hook that blocks the task hitting <paramref name="point"/> (when <paramref name="match"/> holds) until released.</summary>
    protected PauseGate PauseAt(SchedPoint point, Func<object?, bool> match)
    {
        var gate = new PauseGate(point, match);
        _gates.Add(gate);
        Sched.SetPointDetailHook(gate.Hook);
        return gate;
    }

    /// <summary>As <see cref="PauseAt"/> for a plain scheduling point (no detail), matched by <paramref name="match"/> on the hitting task.</summary>
    protected PauseGate PauseAtPlain(SchedPoint point, Func<bool> match)
    {
        var gate = new PauseGate(point, _ => match());
        _gates.Add(gate);
        Sched.SetPointHook(p => gate.Hook(p, null));
        return gate;
    }

    /// <summary>
    /// A scripted pause: the first task reaching the point (with a matching detail) records it and spins until
    /// released. Spinning, not sleeping: the pause must be invisible to the emulated scheduler.
    /// </summary>
    protected sealed class PauseGate(SchedPoint point, Func<object?, bool> match)
    {
        private volatile bool _released;
        private int _hit;

        public EmuTask? Task { get; private set; }

        public object? Detail { get; private set; }

        public bool Reached => Volatile.Read(ref _hit) != 0;

        public void Hook(SchedPoint p, object? detail)
        {
            if (p != point || !match(detail) || Interlocked.Exchange(ref _hit, 1) != 0)
            {
                return;
            }

            Task = EmuTask.Current;
            Detail = detail;
            var spin = new SpinWait();
            while (!_released)
            {
                spin.SpinOnce();
            }
        }

        public void WaitReached() => WaitUntil(() => Reached, $"a task reaches {point}");

        public void Release() => _released = true;
    }
}
