// Mirrors: lib/libcrc32c.c + arch/x86/crypto/crc32c-intel (v4.4) crc32c(): the Castagnoli CRC btrfs uses for its
// data and metadata checksums (btrfs_csum_data = crc32c(~0, ...), btrfs_csum_final stores ~crc little-endian).
//
// Model: Update is the kernel's crc32c(crc, data, len): a raw running CRC with no inversion, so callers chain it
// over pieces. Compute is the standard CRC-32C of one buffer (seed ~0, result inverted), the value btrfs stores.
// The SSE4.2 / ARMv8 CRC32C instructions do the work where present; a slicing-by-8 table otherwise.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Emu.Block;

/// <summary>CRC-32C (Castagnoli), as the kernel's crc32c().</summary>
public static class Crc32c
{
    private const uint Polynomial = 0x82F63B78; // reflected 0x1EDC6F41

    private static readonly uint[] s_table = BuildTable();

    /// <summary>The standard CRC-32C of <paramref name="data"/> (seed ~0, final inversion): what btrfs stores.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(~0u, data);

    /// <summary>crc32c(crc, data, len): continues a raw CRC over <paramref name="data"/>, without inversions.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported)
        {
            return UpdateSse42(crc, data);
        }

        if (Crc32.Arm64.IsSupported)
        {
            return UpdateArm64(crc, data);
        }

        return UpdateTable(crc, data);
    }

    /// <summary>The table-driven form, whatever the CPU offers (for tests comparing the two).</summary>
    internal static uint UpdateTable(uint crc, ReadOnlySpan<byte> data)
    {
        uint[] t = s_table;
        while (data.Length >= 8)
        {
            uint lo = BinaryPrimitives.ReadUInt32LittleEndian(data) ^ crc;
            uint hi = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            crc = t[(7 * 256) + (lo & 0xFF)] ^ t[(6 * 256) + ((lo >> 8) & 0xFF)] ^
                  t[(5 * 256) + ((lo >> 16) & 0xFF)] ^ t[(4 * 256) + (lo >> 24)] ^
                  t[(3 * 256) + (hi & 0xFF)] ^ t[(2 * 256) + ((hi >> 8) & 0xFF)] ^
                  t[256 + ((hi >> 16) & 0xFF)] ^ t[hi >> 24];
            data = data[8..];
        }

        foreach (byte b in data)
        {
            crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc;
    }

    private static uint UpdateSse42(uint crc, ReadOnlySpan<byte> data)
    {
        ulong c = crc;
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (ulong w in words)
        {
            c = Sse42.X64.Crc32(c, w);
        }

        uint r = (uint)c;
        foreach (byte b in data[(words.Length * 8)..])
        {
            r = Sse42.Crc32(r, b);
        }

        return r;
    }

    private static uint UpdateArm64(uint crc, ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (ulong w in words)
        {
            crc = Crc32.Arm64.ComputeCrc32C(crc, w);
        }

        foreach (byte b in data[(words.Length * 8)..])
        {
            crc = Crc32.ComputeCrc32C(crc, b);
        }

        return crc;
    }

    private static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            }

            t[i] = c;
        }

        for (int i = 0; i < 256; i++)
        {
            for (int s = 1; s < 8; s++)
            {
                uint prev = t[((s - 1) * 256) + i];
                t[(s * 256) + i] = (prev >> 8) ^ t[prev & 0xFF];
            }
        }

        return t;
    }
}
