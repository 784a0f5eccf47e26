// Mirrors: include/asm-generic/bitops (v4.4) atomic bit operations on a flags word. Every operation here is
// a full barrier (Interlocked), which is at least what the kernel's *_lock / *_unlock variants promise.
namespace Emu.Kernel;

/// <summary>Atomic bit operations on a 64-bit flags word.</summary>
public static class Bitops
{
    /// <summary>test_bit().</summary>
    public static bool TestBit(ref long word, int bit) => (Volatile.Read(ref word) & (1L << bit)) != 0;

    /// <summary>set_bit().</summary>
    public static void SetBit(ref long word, int bit) => Interlocked.Or(ref word, 1L << bit);

    /// <summary>clear_bit().</summary>
    public static void ClearBit(ref long word, int bit) => Interlocked.And(ref word, ~(1L << bit));

    /// <summary>test_and_set_bit() / test_and_set_bit_lock(): sets the bit, returns whether it was already set.</summary>
    public static bool TestAndSetBit(ref long word, int bit)
    {
        long mask = 1L << bit;
        // Plain read first so a contended lock bit is not written (and its cache line not stolen) in vain.
        if ((Volatile.Read(ref word) & mask) != 0)
        {
            return true;
        }

        return (Interlocked.Or(ref word, mask) & mask) != 0;
    }

    /// <summary>test_and_clear_bit(): clears the bit, returns whether it was set.</summary>
    public static bool TestAndClearBit(ref long word, int bit)
    {
        long mask = 1L << bit;
        return (Interlocked.And(ref word, ~mask) & mask) != 0;
    }
}
