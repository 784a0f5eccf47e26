// Mirrors: include/linux/blk_types.h and include/linux/blkdev.h (v4.4): request operations and flags, sector
// units, and the queue limits every request is built within.
//
// Model: v4.4 packs the data direction and the REQ_* modifiers into one bi_rw word, with a flush being a write
// carrying REQ_FLUSH. Emu keeps the operation and its modifiers apart, as v4.10 did with bi_opf
// (REQ_OP_READ/WRITE/FLUSH plus REQ_PREFLUSH, REQ_FUA, REQ_SYNC), because every consumer asks "which op?" first.
// A write of zero bytes carrying Preflush is a pure flush, as an empty REQ_FLUSH bio is in v4.4.
// Differs: the completion error is v4.4's bio->bi_error (0 or -errno), not v4.13's blk_status_t: btrfs 4.4
// reads bi_error, and engines already report -errno.
namespace Emu.Block;

/// <summary>What a bio or request does (REQ_OP_*).</summary>
public enum ReqOp : byte
{
    /// <summary>Read sectors into the bio's pages. REQ_OP_READ.</summary>
    Read = 0,

    /// <summary>Write the bio's pages to sectors. REQ_OP_WRITE.</summary>
    Write = 1,

    /// <summary>Flush the device's volatile cache; carries no data. REQ_OP_FLUSH (v4.4: empty bio with REQ_FLUSH).</summary>
    Flush = 2,
}

/// <summary>Modifiers of a bio's operation (REQ_* flags).</summary>
[Flags]
public enum ReqFlags : ushort
{
    /// <summary>No modifier.</summary>
    None = 0,

    /// <summary>Someone waits for this I/O. REQ_SYNC.</summary>
    Sync = 1 << 0,

    /// <summary>Filesystem metadata. REQ_META.</summary>
    Meta = 1 << 1,

    /// <summary>Forced unit access: the write is durable when it completes. REQ_FUA.</summary>
    Fua = 1 << 2,

    /// <summary>Flush the volatile cache before the data. REQ_PREFLUSH (v4.4: REQ_FLUSH on a write).</summary>
    Preflush = 1 << 3,
}

/// <summary>Units and defaults of the block layer.</summary>
public static class Blk
{
    /// <summary>Bits in a sector number: sectors are 512 bytes whatever the device's block size. SECTOR_SHIFT.</summary>
    public const int SectorShift = 9;

    /// <summary>Bytes per sector. SECTOR_SIZE.</summary>
    public const int SectorSize = 1 << SectorShift;

    /// <summary>
    /// Requests a plug holds for one queue before it is flushed. BLK_MAX_REQUEST_COUNT: 16 in v4.4, 32 since v5.1;
    /// Emu takes 32 so one plug flush fills a QD32 batch.
    /// </summary>
    public const int MaxRequestCount = 32;

    /// <summary>Default largest request, in sectors (1280 KiB). BLK_DEF_MAX_SECTORS.</summary>
    public const int DefaultMaxSectors = 2560;

    /// <summary>Default most segments (runs of contiguous memory) in one request. BLK_MAX_SEGMENTS.</summary>
    public const int MaxSegments = 128;

    /// <summary>Most vectors one bio holds. BIO_MAX_PAGES.</summary>
    public const int BioMaxPages = 256;

    /// <summary>Default tags per hardware queue. BLKDEV_MAX_RQ.</summary>
    public const int DefaultQueueDepth = 128;
}

/// <summary>
/// The limits requests on a queue are built within (struct queue_limits): set at init from the engine and the
/// configuration, read-only after.
/// </summary>
public sealed class QueueLimits
{
    internal QueueLimits(uint logicalBlockSize, uint physicalBlockSize, uint dmaAlignment, int maxSectors, int maxSegments)
    {
        LogicalBlockSize = logicalBlockSize;
        PhysicalBlockSize = physicalBlockSize;
        DmaAlignment = dmaAlignment;
        MaxSectors = maxSectors;
        MaxSegments = maxSegments;
    }

    /// <summary>Smallest unit the device addresses (logical_block_size).</summary>
    public uint LogicalBlockSize { get; }

    /// <summary>Smallest unit the device writes without read-modify-write (physical_block_size).</summary>
    public uint PhysicalBlockSize { get; }

    /// <summary>Alignment buffers must have for the device (dma_alignment + 1).</summary>
    public uint DmaAlignment { get; }

    /// <summary>Largest request in sectors (max_sectors); larger bios are split.</summary>
    public int MaxSectors { get; }

    /// <summary>Most memory segments per request (max_segments); bios with more are split.</summary>
    public int MaxSegments { get; }

    /// <summary>Largest request in bytes.</summary>
    public long MaxBytes => (long)MaxSectors << Blk.SectorShift;
}

/// <summary>The errno values the block layer itself produces (asm-generic/errno-base.h); bi_error holds their negation.</summary>
internal static class KErrno
{
    internal const int EIO = 5;     // I/O error: device failure, short transfer, injected fault
    internal const int EAGAIN = 11; // the engine refused an I/O
    internal const int ENODEV = 19; // the disk is going away
}
