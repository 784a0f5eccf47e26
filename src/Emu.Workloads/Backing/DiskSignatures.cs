// What a backing store holds before Emu formats it: the signatures of other filesystems, volume formats and
// partition tables (as blkid's probes find them), or Emu's own superblock. Emu refuses to overwrite the former
// without --force and simply reformats the latter.
using System.Buffers.Binary;
using Emu.Btrfs;

namespace Emu.Workloads.Backing;

/// <summary>What the first blocks of a backing store say about its contents.</summary>
public enum DiskContent
{
    /// <summary>Every byte looked at is zero (a new or never-written file).</summary>
    Empty,

    /// <summary>A filesystem Emu formatted earlier (its superblock magic at offset 0).</summary>
    EmuFilesystem,

    /// <summary>Another filesystem, a volume format or a partition table.</summary>
    ForeignSignature,

    /// <summary>Non-zero data with no signature Emu knows and no Emu superblock.</summary>
    UnknownData,
}

/// <summary>Recognises what the first blocks of a device or file hold.</summary>
public static class DiskSignatures
{
    /// <summary>How many leading bytes <see cref="Probe"/> needs: up to the btrfs magic at 64 KiB + 64.</summary>
    public const int ProbeBytes = 68 * 1024;

    private const int EmuMagicOffset = 0x40;          // DiskIo: the magic in Emu's superblock at offset 0
    private const int Ext2MagicOffset = 1024 + 0x38;  // ext2/3/4 s_magic, 0xEF53 little-endian
    private const int BtrfsMagicOffset = 65536 + 0x40; // btrfs primary superblock magic
    private const int SwapMagicOffset = 4096 - 10;    // "SWAPSPACE2" / "SWAP-SPACE" at the end of the first page
    private const int MbrSignatureOffset = 510;       // 0x55 0xAA
    private const int MbrPartitionTable = 446;        // four 16-byte entries; the type byte is at +4
    private const int GptHeaderOffset = 512;          // "EFI PART" in LBA 1

    private static ReadOnlySpan<byte> LuksMagic => [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xBA, 0xBE];

    private static ReadOnlySpan<byte> Luks2SecondaryMagic => [(byte)'S', (byte)'K', (byte)'U', (byte)'L', 0xBA, 0xBE];

    /// <summary>
    /// Classifies <paramref name="head"/>, the first bytes of a device (up to <see cref="ProbeBytes"/>; fewer
    /// for a short file). <paramref name="what"/> names the signature found, e.g. "an ext4 filesystem (magic
    /// 0xEF53 at byte 1080)".
    /// </summary>
    public static DiskContent Probe(ReadOnlySpan<byte> head, out string what)
    {
        if (Has(head, EmuMagicOffset, DiskIo.EmuMagic))
        {
            what = $"an Emu filesystem (magic {DiskIo.MagicString} at byte {EmuMagicOffset})";
            return DiskContent.EmuFilesystem;
        }

        if (head.Length >= Ext2MagicOffset + 2 && BinaryPrimitives.ReadUInt16LittleEndian(head[Ext2MagicOffset..]) == 0xEF53)
        {
            what = $"an ext2/ext3/ext4 filesystem (magic 0xEF53 at byte {Ext2MagicOffset})";
            return DiskContent.ForeignSignature;
        }

        if (Has(head, 0, "XFSB"u8))
        {
            what = "an XFS filesystem (magic XFSB at byte 0)";
            return DiskContent.ForeignSignature;
        }

        if (Has(head, BtrfsMagicOffset, "_BHRfS_M"u8))
        {
            what = $"a btrfs filesystem (magic _BHRfS_M at byte {BtrfsMagicOffset})";
            return DiskContent.ForeignSignature;
        }

        if (Has(head, SwapMagicOffset, "SWAPSPACE2"u8) || Has(head, SwapMagicOffset, "SWAP-SPACE"u8))
        {
            what = $"a swap area (magic SWAPSPACE2 at byte {SwapMagicOffset})";
            return DiskContent.ForeignSignature;
        }

        if (Has(head, 0, LuksMagic) || Has(head, 0, Luks2SecondaryMagic))
        {
            what = "a LUKS encrypted volume (magic LUKS at byte 0)";
            return DiskContent.ForeignSignature;
        }

        if (Has(head, GptHeaderOffset, "EFI PART"u8))
        {
            what = $"a GPT partition table (\"EFI PART\" at byte {GptHeaderOffset})";
            return DiskContent.ForeignSignature;
        }

        if (head.Length >= MbrSignatureOffset + 2 && head[MbrSignatureOffset] == 0x55 && head[MbrSignatureOffset + 1] == 0xAA && HasMbrPartition(head))
        {
            what = $"an MBR partition table (0x55AA at byte {MbrSignatureOffset} and a partition entry)";
            return DiskContent.ForeignSignature;
        }

        if (head.ContainsAnyExcept((byte)0))
        {
            int first = head.IndexOfAnyExcept((byte)0);
            what = $"data Emu did not write (non-zero bytes from byte {first}, and no Emu superblock)";
            return DiskContent.UnknownData;
        }

        what = "nothing (all zero)";
        return DiskContent.Empty;
    }

    private static bool Has(ReadOnlySpan<byte> head, int offset, ReadOnlySpan<byte> magic) =>
        head.Length >= offset + magic.Length && head.Slice(offset, magic.Length).SequenceEqual(magic);

    private static bool HasMbrPartition(ReadOnlySpan<byte> head)
    {
        for (int i = 0; i < 4; i++)
        {
            if (head[MbrPartitionTable + i * 16 + 4] != 0)
            {
                return true;
            }
        }

        return false;
    }
}
