// The engines whose hardware queues each own a shim ring (uring.c, psync.c) over one O_DIRECT file or block
// device: io_uring (UringEngine) and psync (PsyncEngine).
//
// Model: the engine describes the device as emu_blockdev_open found it (size, logical block size as O_DIRECT
// needs it, memory alignment) and keeps its descriptor open for as long as the engine lives; each hardware queue
// gets a ring of its own, so submission needs no lock beyond the hardware queue's and its completion thread is
// the ring's only reaper.
// Differs: requests reach the ring as plain READ/WRITE/FSYNC descriptors; neither registered buffers nor
// registered files are used (fio's io_uring defaults do not use them either).
using Emu.Interop;
using Emu.Kernel;

namespace Emu.Block;

/// <summary>An engine whose hardware queues each own a <see cref="Ring"/> over a <see cref="BlockDevice"/>.</summary>
public abstract class RingEngine : BlkEngine
{
    private readonly BlockDevice _device; // I
    private readonly bool _ownsDevice;    // I
    private readonly IoEngine _wanted;    // I
    private bool _handleAdded;            // the descriptor is pinned until Dispose
    private IoEngine _chosen;             // set by the first ring

    /// <param name="device">The backing file or device; the caller keeps it open unless <paramref name="ownsDevice"/>.</param>
    /// <param name="wanted">The ring engine to ask the shim for.</param>
    /// <param name="ownsDevice">Dispose <paramref name="device"/> with the engine.</param>
    private protected RingEngine(BlockDevice device, IoEngine wanted, bool ownsDevice)
    {
        ArgumentNullException.ThrowIfNull(device);
        _device = device;
        _ownsDevice = ownsDevice;
        _wanted = wanted;
        _chosen = wanted;
        device.Handle.DangerousAddRef(ref _handleAdded);
        Fd = device.Handle.DangerousGetFd();
    }

    /// <inheritdoc />
    public override string Name => _chosen == IoEngine.Psync ? "psync" : "io_uring";

    /// <summary>Why <see cref="IoEngine.Auto"/> fell back to psync (positive errno), else 0.</summary>
    public int FallbackErrno { get; private set; }

    /// <summary>The backing file or device.</summary>
    public BlockDevice Device => _device;

    /// <inheritdoc />
    public override long CapacityBytes => (long)_device.SizeBytes;

    /// <inheritdoc />
    public override uint LogicalBlockSize => Math.Max(_device.LogicalBlockSize, _device.DioOffsetAlign);

    /// <inheritdoc />
    public override uint PhysicalBlockSize => Math.Max(_device.PhysicalBlockSize, LogicalBlockSize);

    /// <inheritdoc />
    public override uint DmaAlignment => Math.Max(_device.DioMemAlign, 1);

    private int Fd { get; }

    /// <inheritdoc />
    protected override BlkEngineQueue CreateQueue(int queueNum, int entries, int node)
    {
        Ring ring = Ring.Create((uint)entries, _wanted);
        if (_wanted == IoEngine.Auto && ring.Engine == IoEngine.Psync && _chosen == IoEngine.Auto)
        {
            FallbackErrno = ring.FallbackErrno;
            Klog.Printk($"emu: io_uring is unavailable ({Errno.Message(ring.FallbackErrno)}); {_device.Path} uses the psync engine");
        }

        _chosen = ring.Engine;
        return new RingQueue(ring, Fd);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (_handleAdded)
        {
            _device.Handle.DangerousRelease();
            _handleAdded = false;
        }

        if (disposing && _ownsDevice)
        {
            _device.Dispose();
        }
    }

    // One hardware queue's ring.
    private sealed class RingQueue(Ring ring, int fd) : BlkEngineQueue((int)ring.Entries)
    {
        public override int Fd => fd;

        public override int Reap(Span<emu_completion> cqes, long timeoutNs)
        {
            if (timeoutNs < 0)
            {
                return ring.Reap(cqes, 1, 0);
            }

            if (timeoutNs == 0)
            {
                return ring.Reap(cqes, 0, 0);
            }

            int rc = ring.Reap(cqes, 1, timeoutNs);
            if (rc == -Errno.ETIME)
            {
                return 0;
            }

            if (rc == -Errno.EOPNOTSUPP)
            {
                // Kernels before 5.11 cannot bound the wait: look, then sleep a millisecond.
                rc = ring.Reap(cqes, 0, 0);
                if (rc == 0)
                {
                    Sched.ScheduleTimeoutInterruptible(1);
                }
            }

            return rc;
        }

        protected override int SubmitCore(ReadOnlySpan<emu_io> ios) => ring.Submit(ios);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                ring.Dispose();
            }
        }
    }
}
