// Log-linear latency histogram in nanoseconds (the shape of HdrHistogram and of fio's clat buckets):
// 64 linear sub-buckets per power of two, so every recorded value is within 1/64 (~1.6%) of its bucket.
// Recording is one array increment: no allocation, safe on completion paths. Not thread-safe; each
// recorder owns one and they are merged when read.
using System.Numerics;

namespace Emu.Kernel.Stats;

public sealed class LatencyHistogram
{
    private const int SubBucketBits = 6;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int Exponents = 64 - SubBucketBits;

    private readonly long[] _counts = new long[(Exponents + 1) * SubBuckets];
    private long _total;
    private long _sum;
    private long _max;
    private long _min = long.MaxValue;

    public long Count => _total;
    public long MaxNs => _total == 0 ? 0 : _max;
    public long MinNs => _total == 0 ? 0 : _min;
    public double MeanNs => _total == 0 ? 0 : (double)_sum / _total;

    public void Record(long ns)
    {
        if (ns < 0) ns = 0;
        _counts[IndexOf(ns)]++;
        _total++;
        _sum += ns;
        if (ns > _max) _max = ns;
        if (ns < _min) _min = ns;
    }

    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        _total += other._total;
        _sum += other._sum;
        if (other._total > 0)
        {
            _max = Math.Max(_max, other._max);
            _min = Math.Min(_min, other._min);
        }
    }

    public void Clear()
    {
        Array.Clear(_counts);
        _total = _sum = _max = 0;
        _min = long.MaxValue;
    }

    /// <summary>The value at percentile p (0..100): the upper edge of the bucket holding it, clamped to the max seen.</summary>
    public long PercentileNs(double p)
    {
        if (_total == 0) return 0;
        long rank = (long)Math.Ceiling(p / 100.0 * _total);
        if (rank < 1) rank = 1;
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return Math.Min(UpperEdge(i), _max);
        }
        return _max;
    }

    /// <summary>The non-empty buckets in ascending order, each as its upper edge and count: for exporting a histogram, not for hot paths.</summary>
    public IEnumerable<(long UpperNs, long Count)> Buckets()
    {
        for (int i = 0; i < _counts.Length; i++)
            if (_counts[i] != 0) yield return (Math.Min(UpperEdge(i), _max), _counts[i]);
    }

    private static int IndexOf(long ns)
    {
        if (ns < SubBuckets) return (int)ns;
        int exponent = 63 - BitOperations.LeadingZeroCount((ulong)ns) - SubBucketBits + 1;
        int sub = (int)(ns >> (exponent - 1)) & (SubBuckets - 1);
        return exponent * SubBuckets + sub;
    }

    private static long UpperEdge(int index)
    {
        int exponent = index / SubBuckets;
        int sub = index % SubBuckets;
        if (exponent == 0) return sub;
        return ((long)(SubBuckets + sub) << (exponent - 1)) + (1L << (exponent - 1)) - 1;
    }
}
