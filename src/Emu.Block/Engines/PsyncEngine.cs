// The psync engine (fio's ioengine=psync): pread/pwrite/fdatasync performed by the shim on the submitting task,
// inside the hardware queue's submit, with completions queued for the completion thread to reap. The fallback
// where io_uring is unavailable; a slow device slows the submitter instead of the completion thread.
using Emu.Interop;

namespace Emu.Block;

/// <summary>An O_DIRECT file or block device driven with pread(2)/pwrite(2).</summary>
public sealed class PsyncEngine : RingEngine
{
    /// <param name="device">The backing file or device, opened with O_DIRECT (<see cref="BlockDevice.Open"/>).</param>
    /// <param name="ownsDevice">Dispose <paramref name="device"/> with the engine.</param>
    public PsyncEngine(BlockDevice device, bool ownsDevice = false)
        : base(device, IoEngine.Psync, ownsDevice)
    {
    }
}
