using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu.Interop;

/// <summary>
/// Helpers over <see cref="emu_cpuset"/>: CPU <c>n</c> is bit <c>n % 64</c> of <c>bits[n / 64]</c>, as in the
/// kernel's cpumask and glibc's cpu_set_t.
/// </summary>
public static class CpuSet
{
    /// <summary>CPUs an emu_cpuset can name: 0 to MaxCpus - 1.</summary>
    public const int MaxCpus = (int)emu_limits.EMU_MAX_CPUS;

    private const int WordCount = (int)emu_limits.EMU_CPUSET_WORDS;

    /// <summary>A set holding exactly <paramref name="cpus"/> (duplicates are harmless).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A CPU outside [0, MaxCpus).</exception>
    public static emu_cpuset FromCpus(ReadOnlySpan<int> cpus)
    {
        emu_cpuset set = default;
        foreach (int cpu in cpus)
            set.Add(cpu);
        return set;
    }

    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpu"/> outside [0, MaxCpus).</exception>
    public static void Add(this ref emu_cpuset set, int cpu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(cpu, MaxCpus);
        Words(ref set)[cpu >> 6] |= 1UL << (cpu & 63);
    }

    /// <summary>False for any CPU the set cannot name, rather than throwing.</summary>
    public static bool Contains(this in emu_cpuset set, int cpu) =>
        (uint)cpu < MaxCpus && (ReadOnlyWords(in set)[cpu >> 6] & (1UL << (cpu & 63))) != 0;

    public static int Count(this in emu_cpuset set)
    {
        int count = 0;
        foreach (ulong word in ReadOnlyWords(in set))
            count += BitOperations.PopCount(word);
        return count;
    }

    /// <summary>The CPUs in ascending order.</summary>
    public static int[] ToArray(this in emu_cpuset set)
    {
        var cpus = new int[set.Count()];
        int next = 0;
        ReadOnlySpan<ulong> words = ReadOnlyWords(in set);
        for (int w = 0; w < words.Length; w++)
        {
            for (ulong word = words[w]; word != 0; word &= word - 1)
                cpus[next++] = (w << 6) + BitOperations.TrailingZeroCount(word);
        }
        return cpus;
    }

    private static Span<ulong> Words(ref emu_cpuset set) =>
        MemoryMarshal.CreateSpan(ref Unsafe.As<emu_cpuset, ulong>(ref set), WordCount);

    private static ReadOnlySpan<ulong> ReadOnlyWords(in emu_cpuset set) =>
        MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<emu_cpuset, ulong>(ref Unsafe.AsRef(in set)), WordCount);
}
