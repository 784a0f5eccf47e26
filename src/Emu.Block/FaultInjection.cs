// Mirrors: lib/fault-inject.c + block/blk-core.c (v4.4) fail_make_request (should_fail: probability, interval,
// times), drivers/md/dm-flakey.c (errors for chosen I/O) and drivers/md/dm-delay.c (a fixed delay per I/O).
//
// Model: a disk's fault injector holds one configuration at a time. Each bio entering generic_make_request that
// matches the filter (operations, sector range) is counted; the Nth, and/or a seeded random fraction, is marked to
// fail (at most Times failures). A marked bio never merges; its request is issued to the engine as a NOP, so it
// touches no data, and completes in completion context with the configured error, which reaches bi_error. A delay
// applies to every matching request once its I/O is done: its completion is held on the hardware queue's delay
// list until due (dm-delay delays before issuing; holding the completion is what lets one completion thread keep
// serving others).
// Differs: one injector per disk instead of per-task/debugfs knobs; randomness comes from the seed in the
// configuration so a run can be replayed.
using Emu.Interop;

namespace Emu.Block;

/// <summary>Operations a fault applies to.</summary>
[Flags]
public enum FaultOps
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>Reads.</summary>
    Read = 1 << 0,

    /// <summary>Writes.</summary>
    Write = 1 << 1,

    /// <summary>Cache flushes (the sector range does not apply to them).</summary>
    Flush = 1 << 2,

    /// <summary>Reads and writes.</summary>
    ReadWrite = Read | Write,
}

/// <summary>What to inject; immutable, swapped whole with <see cref="FaultInjection.Configure"/>.</summary>
public sealed record FaultConfig
{
    /// <summary>Fail the Nth matching bio (1-based), once; 0 for none.</summary>
    public long FailNth { get; init; }

    /// <summary>Fail each matching bio with this probability (0 to 1), drawn from <see cref="Seed"/>.</summary>
    public double FailProbability { get; init; }

    /// <summary>Seed of the random draws.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Most failures to inject; -1 for no limit (fail_make_request's times).</summary>
    public long Times { get; init; } = -1;

    /// <summary>The error bi_error receives (-errno).</summary>
    public int Error { get; init; } = -KErrno.EIO;

    /// <summary>Operations the failures and the delay apply to.</summary>
    public FaultOps Ops { get; init; } = FaultOps.ReadWrite;

    /// <summary>First sector of the range faults apply to (I/O overlapping the range matches).</summary>
    public long FirstSector { get; init; }

    /// <summary>Last sector of the range faults apply to, inclusive.</summary>
    public long LastSector { get; init; } = long.MaxValue;

    /// <summary>Added to the completion of every matching request, in nanoseconds; 0 for none.</summary>
    public long DelayNs { get; init; }
}

/// <summary>A disk's fault injector (fail_make_request + dm-flakey + dm-delay).</summary>
public sealed class FaultInjection
{
    private readonly Lock _lock = new(); // the random source
    private FaultConfig? _config;        // swapped whole; null: no faults
    private long _matched;               // A: matching bios seen under the current configuration
    private long _failed;                // A: failures injected under the current configuration
    private long _delayed;               // A: requests delayed
    private ulong _rng;                  // L: _lock

    /// <summary>The configuration in force; null when nothing is injected.</summary>
    public FaultConfig? Config => Volatile.Read(ref _config);

    /// <summary>Failures injected since the last <see cref="Configure"/>.</summary>
    public long Injected => Interlocked.Read(ref _failed);

    /// <summary>Requests whose completion was delayed since the last <see cref="Configure"/>.</summary>
    public long Delayed => Interlocked.Read(ref _delayed);

    /// <summary>Replaces the configuration (null turns injection off) and restarts its counters.</summary>
    public void Configure(FaultConfig? config)
    {
        if (config is not null)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(config.FailNth);
            if (config.FailProbability is < 0 or > 1 || double.IsNaN(config.FailProbability))
            {
                throw new ArgumentOutOfRangeException(nameof(config), "FailProbability must be between 0 and 1");
            }

            ArgumentOutOfRangeException.ThrowIfNegative(config.DelayNs);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(config.Error, 0);
        }

        lock (_lock)
        {
            Interlocked.Exchange(ref _matched, 0);
            Interlocked.Exchange(ref _failed, 0);
            Interlocked.Exchange(ref _delayed, 0);
            _rng = (config?.Seed ?? 1) | 1;
            Volatile.Write(ref _config, config);
        }
    }

    /// <summary>should_fail() for a bio entering the queue.</summary>
    internal bool ShouldFail(Bio bio)
    {
        FaultConfig? c = Volatile.Read(ref _config);
        if (c is null || (c.FailNth == 0 && c.FailProbability == 0) ||
            !Matches(c, bio.BiOp, bio.Iter.BiSector, bio.Iter.BiSize >> Blk.SectorShift))
        {
            return false;
        }

        long n = Interlocked.Increment(ref _matched);
        bool fail = n == c.FailNth;
        if (!fail && c.FailProbability > 0)
        {
            lock (_lock)
            {
                fail = NextDouble() < c.FailProbability;
            }
        }

        if (!fail)
        {
            return false;
        }

        long failed = Interlocked.Increment(ref _failed);
        if (c.Times >= 0 && failed > c.Times)
        {
            Interlocked.Decrement(ref _failed);
            return false;
        }

        return true;
    }

    /// <summary>The error a fault-injected request completes with.</summary>
    internal int InjectedError() => Volatile.Read(ref _config)?.Error ?? -KErrno.EIO;

    /// <summary>The delay to hold <paramref name="rq"/>'s completion for, or 0.</summary>
    internal long DelayNs(Request rq)
    {
        FaultConfig? c = Volatile.Read(ref _config);
        if (c is null || c.DelayNs == 0 || !Matches(c, rq.Op, rq.Sector, rq.Sectors))
        {
            return 0;
        }

        Interlocked.Increment(ref _delayed);
        return c.DelayNs;
    }

    private static bool Matches(FaultConfig c, ReqOp op, long sector, long sectors)
    {
        FaultOps wanted = op switch
        {
            ReqOp.Read => FaultOps.Read,
            ReqOp.Write => FaultOps.Write,
            _ => FaultOps.Flush,
        };
        if ((c.Ops & wanted) == 0)
        {
            return false;
        }

        return op == ReqOp.Flush || (sector <= c.LastSector && sector + Math.Max(sectors, 1) - 1 >= c.FirstSector);
    }

    // xorshift64*: the configured seed makes every run's choices the same.
    private double NextDouble()
    {
        _rng ^= _rng >> 12;
        _rng ^= _rng << 25;
        _rng ^= _rng >> 27;
        return ((_rng * 0x2545F4914F6CDD1DUL) >> 11) * (1.0 / (1UL << 53));
    }
}
