// A submission/completion ring (uring.c, psync.c): the engine under Emu's block layer. Thin on purpose:
// Emu.Block owns batching, tags and completion threads; this only moves emu_io and emu_completion arrays
// across the boundary, one native call per batch, without allocating.
namespace Emu.Interop;

/// <summary>I/O engine of a <see cref="Ring"/>; values are emu_engine.</summary>
public enum IoEngine
{
    Auto = (int)emu_engine.EMU_ENGINE_AUTO,        // EMU_ENGINE_AUTO: io_uring, else psync
    IoUring = (int)emu_engine.EMU_ENGINE_IO_URING, // EMU_ENGINE_IO_URING: liburing
    Psync = (int)emu_engine.EMU_ENGINE_PSYNC,      // EMU_ENGINE_PSYNC: pread/pwrite on the submitting thread
}

/// <summary>
/// One ring. One thread may submit while one other reaps; two submitters (or two reapers) need a lock of
/// the caller's. Reap everything before Dispose: destroying waits for nothing.
/// </summary>
public sealed class Ring : IDisposable
{
    private Ring(RingHandle handle, in emu_ring_params parameters)
    {
        Handle = handle;
        Entries = parameters.entries;
        Engine = (IoEngine)parameters.engine_out;
        FallbackErrno = parameters.fallback_errno;
    }

    public RingHandle Handle { get; }

    /// <summary>Submission queue size: the entries asked for, rounded up to a power of two.</summary>
    public uint Entries { get; }

    /// <summary>The engine chosen: never <see cref="IoEngine.Auto"/>.</summary>
    public IoEngine Engine { get; }

    /// <summary>Why <see cref="IoEngine.Auto"/> fell back to psync (positive errno, e.g. ENOSYS, EPERM); 0 otherwise.</summary>
    public int FallbackErrno { get; }

    /// <summary>Creates a ring with room for <paramref name="entries"/> submissions (rounded up to a power of two).</summary>
    /// <exception cref="ShimException">The engine asked for cannot be set up (an explicit IoUring is never replaced by psync).</exception>
    public static unsafe Ring Create(uint entries, IoEngine wanted)
    {
        var parameters = new emu_ring_params { entries = entries, engine = (int)wanted };
        nint ring;
        Errno.ThrowIfError(EmuShim.emu_ring_create(&parameters, &ring), $"emu_ring_create {wanted}");
        return new Ring(new RingHandle(ring), parameters);
    }

    /// <summary>Queues and submits <paramref name="ios"/> with one call; psync performs them here, in order.</summary>
    /// <returns>
    /// How many were accepted, from the front: at most <see cref="Entries"/> per call and 2 * Entries unreaped.
    /// Or -errno: -EAGAIN when none fit; -EINVAL, nothing submitted, when a descriptor has an unknown op or flags
    /// its op does not take.
    /// </returns>
    public unsafe int Submit(ReadOnlySpan<emu_io> ios)
    {
        bool added = false;
        try
        {
            Handle.DangerousAddRef(ref added);
            uint submitted;
            int rc;
            fixed (emu_io* p = ios)
                rc = EmuShim.emu_ring_submit(Handle.DangerousGetHandle(), p, (uint)ios.Length, &submitted);
            return rc < 0 ? rc : (int)submitted;
        }
        finally
        {
            if (added)
                Handle.DangerousRelease();
        }
    }

    /// <summary>
    /// Copies up to <c>completions.Length</c> completions, first waiting for <paramref name="minComplete"/> of them
    /// (none: do not wait), for at most <paramref name="timeoutNs"/> when it is positive.
    /// </summary>
    /// <returns>
    /// How many were copied, or -errno: -ETIME when the timeout expired with none; -EINVAL when
    /// <paramref name="minComplete"/> exceeds <c>completions.Length</c>; -EOPNOTSUPP for a timed wait on a kernel
    /// before 5.11.
    /// </returns>
    public unsafe int Reap(Span<emu_completion> completions, uint minComplete, long timeoutNs)
    {
        bool added = false;
        try
        {
            Handle.DangerousAddRef(ref added);
            uint reaped;
            int rc;
            fixed (emu_completion* p = completions)
            {
                rc = EmuShim.emu_ring_reap(Handle.DangerousGetHandle(), p, (uint)completions.Length, minComplete,
                    timeoutNs, &reaped);
            }
            return rc < 0 ? rc : (int)reaped;
        }
        finally
        {
            if (added)
                Handle.DangerousRelease();
        }
    }

    /// <summary>Registers buffers for <see cref="emu_io_flags.EMU_IO_FIXED_BUFFER"/>; psync accepts and ignores them.</summary>
    /// <returns>0 or -errno (e.g. -ENOMEM when RLIMIT_MEMLOCK is too small: use unregistered buffers then).</returns>
    public unsafe int RegisterBuffers(ReadOnlySpan<emu_iovec> buffers)
    {
        bool added = false;
        try
        {
            Handle.DangerousAddRef(ref added);
            fixed (emu_iovec* p = buffers)
                return EmuShim.emu_ring_register_buffers(Handle.DangerousGetHandle(), p, (uint)buffers.Length);
        }
        finally
        {
            if (added)
                Handle.DangerousRelease();
        }
    }

    /// <summary>
    /// Registers descriptors for <see cref="emu_io_flags.EMU_IO_FIXED_FILE"/>: emu_io.fd then indexes this table.
    /// Once per ring, before submitting I/O that uses it.
    /// </summary>
    /// <returns>0 or -errno (-EBUSY the second time).</returns>
    public unsafe int RegisterFiles(ReadOnlySpan<int> fds)
    {
        bool added = false;
        try
        {
            Handle.DangerousAddRef(ref added);
            fixed (int* p = fds)
                return EmuShim.emu_ring_register_files(Handle.DangerousGetHandle(), p, (uint)fds.Length);
        }
        finally
        {
            if (added)
                Handle.DangerousRelease();
        }
    }

    public void Dispose() => Handle.Dispose();
}
