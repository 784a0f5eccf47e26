// The data workloads write: every 4 KiB block written is derived from (seed, file, offset, write id), with a
// header naming them, so a block found on a read identifies the write that produced it (or shows it is no
// write's data at all). Write ids start at 1; an all-zero block stands for "never written" (write id 0).
using System.Buffers.Binary;

namespace Emu.Workloads;

/// <summary>Derives and identifies written blocks.</summary>
public static class Payload
{
    /// <summary>The unit of data identity: one block (the page and sector size).</summary>
    public const int BlockSize = 4096;

    /// <summary>The write id of a block nobody wrote (all zero).</summary>
    public const long Unwritten = 0;

    private const int HeaderBytes = 32;
    private static ReadOnlySpan<byte> Magic => "EmuW"u8;

    /// <summary>Fills one block with the payload of write <paramref name="writeId"/> at <paramref name="offset"/> of <paramref name="file"/>.</summary>
    public static void Fill(Span<byte> block, ulong seed, int file, long offset, long writeId)
    {
        if (block.Length != BlockSize)
        {
            throw new ArgumentException($"a payload block is {BlockSize} bytes", nameof(block));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(writeId);
        Magic.CopyTo(block);
        BinaryPrimitives.WriteInt64LittleEndian(block[4..], writeId);
        BinaryPrimitives.WriteInt32LittleEndian(block[12..], file);
        BinaryPrimitives.WriteInt64LittleEndian(block[16..], offset);
        BinaryPrimitives.WriteUInt64LittleEndian(block[24..], seed);
        ulong x = Mix(seed ^ Mix((ulong)writeId) ^ Mix(((ulong)(uint)file << 40) ^ (ulong)offset));
        for (int i = HeaderBytes; i < BlockSize; i += 8)
        {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            BinaryPrimitives.WriteUInt64LittleEndian(block[i..], x * 0x2545F4914F6CDD1DUL);
        }
    }

    /// <summary>Fills consecutive blocks starting at <paramref name="offset"/> (block aligned) with write <paramref name="writeId"/>.</summary>
    public static void FillRange(Span<byte> buffer, ulong seed, int file, long offset, long writeId)
    {
        for (int i = 0; i < buffer.Length; i += BlockSize)
        {
            Fill(buffer.Slice(i, BlockSize), seed, file, offset + i, writeId);
        }
    }

    /// <summary>
    /// Which write produced <paramref name="block"/> found at <paramref name="offset"/> of <paramref name="file"/>:
    /// <see cref="Unwritten"/> for all zero, a write id when the block is exactly that write's payload for this
    /// place, or -1 when it is neither (corrupt, misplaced, or torn).
    /// </summary>
    public static long Identify(ReadOnlySpan<byte> block, ulong seed, int file, long offset)
    {
        if (block.Length != BlockSize)
        {
            throw new ArgumentException($"a payload block is {BlockSize} bytes", nameof(block));
        }

        if (!block.ContainsAnyExcept((byte)0))
        {
            return Unwritten;
        }

        if (!block[..4].SequenceEqual(Magic))
        {
            return -1;
        }

        long writeId = BinaryPrimitives.ReadInt64LittleEndian(block[4..]);
        if (writeId <= 0)
        {
            return -1;
        }

        Span<byte> expected = stackalloc byte[BlockSize];
        Fill(expected, seed, file, offset, writeId);
        return block.SequenceEqual(expected) ? writeId : -1;
    }

    /// <summary>A short description of what a block holds, for mismatch reports: "write 17", "zeros", or its first bytes.</summary>
    public static string Describe(ReadOnlySpan<byte> block, ulong seed, int file, long offset)
    {
        long id = Identify(block, seed, file, offset);
        if (id == Unwritten)
        {
            return "zeros (never written)";
        }

        if (id > 0)
        {
            return $"write {id}";
        }

        if (block[..4].SequenceEqual(Magic))
        {
            long claimed = BinaryPrimitives.ReadInt64LittleEndian(block[4..]);
            int cf = BinaryPrimitives.ReadInt32LittleEndian(block[12..]);
            long co = BinaryPrimitives.ReadInt64LittleEndian(block[16..]);
            return $"damaged data claiming write {claimed} of file {cf} at offset {co}";
        }

        return "foreign bytes " + Convert.ToHexString(block[..16]);
    }

    // splitmix64's finalizer.
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
