// The io_uring engine (fio's ioengine=io_uring): Emu's default device. One ring per hardware queue, batched
// submission (one io_uring_submit per batch) and batched reaping by the completion thread. Under
// IoEngine.Auto it falls back to psync where io_uring is unavailable, printing one warning line.
using Emu.Interop;

namespace Emu.Block;

/// <summary>An O_DIRECT file or block device driven through io_uring rings.</summary>
public sealed class UringEngine : RingEngine
{
    /// <param name="device">The backing file or device, opened with O_DIRECT (<see cref="BlockDevice.Open"/>).</param>
    /// <param name="auto">Fall back to psync, with a warning, when io_uring is unavailable (EMU_ENGINE_AUTO).</param>
    /// <param name="ownsDevice">Dispose <paramref name="device"/> with the engine.</param>
    public UringEngine(BlockDevice device, bool auto = false, bool ownsDevice = false)
        : base(device, auto ? IoEngine.Auto : IoEngine.IoUring, ownsDevice)
    {
    }
}
