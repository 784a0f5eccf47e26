// Mirrors: the life of an ftrace instance (tracing_on, the per-CPU buffers, buffer_size_kb): a session turns the
// tracepoints on, owns the rings its writers create, and is read out once it is over.
//
// Model: one session records at a time (KernelTrace.s_session). Each thread that hits a tracepoint gets its own
// ring on its first event (a few allocations per thread as its ring grows, none per event); the session keeps
// every ring so the trace outlives the tasks that wrote it. Stop() turns the tracepoints off; WriteChromeJson() may run before or
// after it, and a task still asleep then appears as a sleep that has not ended.
// Differs: buffers are per task, not per CPU, and sized in entries (TraceRecord), not kilobytes.
namespace Emu.Kernel;

/// <summary>A recording of Emu's tracepoints, written out as a Chrome trace-event timeline.</summary>
public sealed class TraceSession : IDisposable
{
    /// <summary>
    /// Default slots per task ring: 65536 (at most 4 MiB per task; a ring grows to it as its task writes), so the
    /// newest 65535 entries of each task are kept.
    /// </summary>
    public const int DefaultRingCapacity = 1 << 16;

    private readonly Lock _lock = new();
    private readonly List<TraceRing> _rings = new(); // L: _lock
    private long _stopNs;                             // Interlocked: set once, by the first Stop
    private int _stopped;                             // Volatile: set after _stopNs, so a reader of 1 sees _stopNs

    private TraceSession(int ringCapacity)
    {
        RingCapacity = ringCapacity;
        StartNs = KernelTrace.NowNs();
        StartedUtc = DateTime.UtcNow;
    }

    /// <summary>Slots in each task's ring: the newest RingCapacity - 1 entries are kept, older ones overwritten. I.</summary>
    public int RingCapacity { get; }

    /// <summary>When recording started (<see cref="KernelTrace.NowNs"/>'s clock): time 0 of the timeline. I.</summary>
    public long StartNs { get; }

    /// <summary>Wall-clock start, for the trace's metadata. I.</summary>
    public DateTime StartedUtc { get; }

    /// <summary>Whether the tracepoints still record into this session.</summary>
    public bool IsRecording => Volatile.Read(ref _stopped) == 0;

    /// <summary>When recording stopped (<see cref="KernelTrace.NowNs"/>'s clock), or null while it records.</summary>
    public long? StopNs => Volatile.Read(ref _stopped) == 0 ? null : Volatile.Read(ref _stopNs);

    /// <summary>
    /// Starts recording (tracing_on). Only one session records at a time.
    /// </summary>
    /// <param name="ringCapacity">Slots per task ring, a power of two of at least 16.</param>
    /// <exception cref="InvalidOperationException">Another session is recording.</exception>
    public static TraceSession Start(int ringCapacity = DefaultRingCapacity)
    {
        if (ringCapacity < 16 || (ringCapacity & (ringCapacity - 1)) != 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(ringCapacity), "the ring capacity must be a power of two of at least 16");
        }

        var session = new TraceSession(ringCapacity);
        if (!KernelTrace.TryActivate(session))
        {
            ThrowHelper.ThrowInvalidOperation("a trace session is already recording.");
        }

        return session;
    }

    /// <summary>Stops recording (tracing_off). What was recorded stays readable. Idempotent.</summary>
    public void Stop()
    {
        long now = KernelTrace.NowNs();
        if (Interlocked.CompareExchange(ref _stopNs, now, 0) == 0)
        {
            Volatile.Write(ref _stopped, 1);
            KernelTrace.Deactivate(this);
        }
    }

    /// <inheritdoc />
    public void Dispose() => Stop();

    /// <summary>
    /// Writes what was recorded as Chrome trace-event JSON (the JSON Object Format) to <paramref name="stream"/>.
    /// Sleeps and work items still open are written as ending now, marked "still blocked" / "still running".
    /// </summary>
    /// <returns>Counts of what was written.</returns>
    public TraceWriteSummary WriteChromeJson(Stream stream, TraceWriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new TraceEventWriter(this, options ?? new TraceWriteOptions()).Write(stream);
    }

    internal TraceRing NewRing(EmuTask? task)
    {
        var ring = new TraceRing(this, task, RingCapacity);
        lock (_lock)
        {
            _rings.Add(ring);
        }

        return ring;
    }

    internal TraceRing[] Rings()
    {
        lock (_lock)
        {
            return _rings.ToArray();
        }
    }
}

/// <summary>How <see cref="TraceSession.WriteChromeJson"/> labels the trace.</summary>
public sealed record TraceWriteOptions
{
    /// <summary>
    /// Name of the trace "process" holding the task tracks (e.g. "emu repro unpatched"); the workqueue and
    /// block tracks are named after it ("... workqueues", "... blk-mq").
    /// </summary>
    public string ProcessLabel { get; init; } = "emu";

    /// <summary>First pid of the trace's pseudo-processes (tasks, workqueues, blk-mq take three in a row).</summary>
    public int PidBase { get; init; } = 1;

    /// <summary>Extra string entries for "otherData" (command line, mode, seed...).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> OtherData { get; init; } = [];
}

/// <summary>What <see cref="TraceSession.WriteChromeJson"/> wrote.</summary>
/// <param name="Events">Trace events written (metadata included).</param>
/// <param name="LostEntries">Entries overwritten in full rings before they could be written (the oldest ones).</param>
/// <param name="StillBlocked">Sleeps that had not ended when the trace was written.</param>
public readonly record struct TraceWriteSummary(long Events, long LostEntries, int StillBlocked);
