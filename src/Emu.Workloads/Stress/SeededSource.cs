// All of a stress run's random choices come from one printed seed (as Coyote's strategies draw every choice
// from one seeded generator): each task gets its own stream derived from the seed and its index, so the
// sequence of operations a task picks is the same for the same seed (the threads' interleaving is not).
namespace Emu.Workloads.Stress;

/// <summary>The run's one seeded source of randomness.</summary>
public sealed class SeededSource(ulong seed)
{
    /// <summary>The seed (printed, and accepted back with --seed).</summary>
    public ulong Seed { get; } = seed;

    /// <summary>A fresh seed for runs that were not given one.</summary>
    public static ulong NewSeed() => (ulong)Random.Shared.NextInt64(1, long.MaxValue);

    /// <summary>The stream of task <paramref name="index"/>.</summary>
    public Rng ForTask(int index) => new(Mix(Seed ^ Mix((ulong)index + 0x632BE59BD9B4E019UL)));

    internal static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>One task's random stream (splitmix64). Not thread-safe: one task uses it.</summary>
public sealed class Rng(ulong state)
{
    private ulong _state = state;

    /// <summary>A uniform integer in [0, <paramref name="n"/>).</summary>
    public int Next(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        _state += 0x9E3779B97F4A7C15UL;
        return (int)(SeededSource.Mix(_state) % (ulong)n);
    }

    /// <summary>A uniform integer in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int Between(int min, int max) => min + Next(max - min + 1);

    /// <summary>True with probability <paramref name="percent"/>/100.</summary>
    public bool Chance(int percent) => Next(100) < percent;
}
