using System.Runtime.InteropServices;

namespace Emu.Interop.Tests;

public sealed class CpuSetTests
{
    [Test]
    public void FromCpus_ToArray_RoundTripsAscendingWithoutDuplicates()
    {
        emu_cpuset set = CpuSet.FromCpus([1023, 0, 64, 63, 64, 5]);

        Assert.That(set.ToArray(), Is.EqualTo(new[] { 0, 5, 63, 64, 1023 }));
        Assert.That(set.Count(), Is.EqualTo(5));
    }

    [Test]
    public void FromCpus_SetsBitCpuMod64OfWordCpuDiv64()
    {
        emu_cpuset set = CpuSet.FromCpus([0, 65, 130]);

        Span<ulong> words = MemoryMarshal.Cast<emu_cpuset, ulong>(MemoryMarshal.CreateSpan(ref set, 1));
        Assert.That(words[..4].ToArray(), Is.EqualTo(new[] { 1UL, 1UL << 1, 1UL << 2, 0UL }));
    }

    [Test]
    public void Contains_IsFalseOutsideTheSetAndOutsideTheRange()
    {
        emu_cpuset set = CpuSet.FromCpus([3]);

        Assert.That(set.Contains(3), Is.True);
        Assert.That(set.Contains(4), Is.False);
        Assert.That(set.Contains(-1), Is.False);
        Assert.That(set.Contains(CpuSet.MaxCpus), Is.False);
    }

    [TestCase(-1)]
    [TestCase(1024)]
    public void Add_CpuTheSetCannotName_Throws(int cpu)
    {
        emu_cpuset set = default;

        Assert.Throws<ArgumentOutOfRangeException>(() => set.Add(cpu));
    }
}
