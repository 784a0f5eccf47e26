// Mirrors: fs/btrfs/file-item.c (v4.4): btrfs_csum_one_bio, btrfs_lookup_bio_sums, btrfs_csum_file_blocks,
// btrfs_del_csums; the checksum of fs/btrfs/disk-io.c btrfs_csum_data / btrfs_csum_final; and the csum tree.
//
// Model: every 4 KiB data sector written gets a crc32c, keyed by its disk byte number. A write bio's sums
// are computed when it is submitted and ride on its ordered extent (btrfs_add_ordered_sum) until
// btrfs_finish_ordered_io inserts them in the csum tree, so checksums of data become visible together with
// the file extent item that points at it. Reads look the sums up at submission and verify each sector when
// the read completes; freeing an extent deletes its sums.
// Differs: the csum tree is an in-memory dictionary, not a b-tree of csum items on disk.
//
// Locking legend: L = _lock (the csum root's tree locks).
using Emu.Block;

namespace Emu.Btrfs;

/// <summary>struct btrfs_ordered_sum: the checksums of one written bio, waiting on its ordered extent.</summary>
/// <param name="Bytenr">Disk byte number of the first sector.</param>
/// <param name="Sums">One crc32c per sector.</param>
public sealed record OrderedSum(long Bytenr, uint[] Sums);

/// <summary>The checksum tree: crc32c of every data sector, by disk byte number.</summary>
public sealed class CsumTree
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, uint> _sums = new(); // L
    private readonly int _sectorSize;                      // I

    /// <param name="sectorSize">Bytes per checksummed sector.</param>
    public CsumTree(int sectorSize) => _sectorSize = sectorSize;

    /// <summary>Number of checksummed sectors.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _sums.Count;
            }
        }
    }

    /// <summary>btrfs_csum_data() + btrfs_csum_final(): the crc32c of one sector.</summary>
    public static uint BtrfsCsumData(ReadOnlySpan<byte> data) => Crc32c.Compute(data);

    /// <summary>btrfs_csum_file_blocks(): records the sums of a finished ordered extent.</summary>
    public void BtrfsCsumFileBlocks(OrderedSum sum)
    {
        lock (_lock)
        {
            long bytenr = sum.Bytenr;
            foreach (uint csum in sum.Sums)
            {
                _sums[bytenr] = csum;
                bytenr += _sectorSize;
            }
        }
    }

    /// <summary>btrfs_del_csums(): forgets the sums of [bytenr, bytenr + len).</summary>
    public void BtrfsDelCsums(long bytenr, long len)
    {
        lock (_lock)
        {
            for (long b = bytenr; b < bytenr + len; b += _sectorSize)
            {
                _sums.Remove(b);
            }
        }
    }

    /// <summary>btrfs_lookup_bio_sums(): the sum of the sector at <paramref name="bytenr"/>, if any.</summary>
    public bool LookupCsum(long bytenr, out uint csum)
    {
        lock (_lock)
        {
            return _sums.TryGetValue(bytenr, out csum);
        }
    }

    /// <summary>
    /// btrfs_lookup_bio_sums() for a read: fills <paramref name="sums"/> with the sums of consecutive sectors
    /// from <paramref name="bytenr"/>; a sector without one gets <paramref name="missing"/> set.
    /// </summary>
    public void LookupBioSums(long bytenr, Span<uint> sums, Span<bool> missing)
    {
        lock (_lock)
        {
            for (int i = 0; i < sums.Length; i++)
            {
                missing[i] = !_sums.TryGetValue(bytenr + (long)i * _sectorSize, out sums[i]);
            }
        }
    }
}
