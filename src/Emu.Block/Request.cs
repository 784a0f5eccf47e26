// Mirrors: include/linux/blkdev.h (v4.4) struct request, as blk-mq uses it: one per tag, preallocated with the
// tag set (tags->rqs[]), carrying a list of contiguous bios from submission to completion.
//
// Model: a request is born when a submitter gets a tag (blk_mq_get_request), takes its first bio
// (blk_mq_bio_to_request), may grow by back and front merges while it waits in a plug, is issued by the hardware
// queue as one or more engine I/Os (one per run of contiguous memory, blk_rq_map_sg's segments), and completes when
// the last of them does; then its bios end and the tag is freed. A request with a preflush runs two stages (the
// flush, then the data) as blk-flush.c sequences them.
// Differs: the engine has no scatter-gather I/O, so a request whose memory is not contiguous is issued as several
// engine I/Os that complete it together (IosPending). Locking: fields are owned by whoever holds the request:
// the submitter until it is inserted, then the hardware queue's dispatch lock (D), then its completion lock (C).
namespace Emu.Block;

/// <summary>The stages of a request's flush sequence still to run (REQ_FSEQ_*); the lowest set bit runs next.</summary>
[Flags]
internal enum FlushSeq : byte
{
    /// <summary>Nothing left: the request is done.</summary>
    None = 0,

    /// <summary>Flush the device cache first. REQ_FSEQ_PREFLUSH.</summary>
    Preflush = 1 << 0,

    /// <summary>Move the data. REQ_FSEQ_DATA.</summary>
    Data = 1 << 1,
}

/// <summary>struct request.</summary>
internal sealed class Request
{
    internal Request(BlkMqHwCtx hctx, int tag)
    {
        Hctx = hctx;
        Tag = tag;
    }

    /// <summary>The hardware queue whose tag this request is. I.</summary>
    internal BlkMqHwCtx Hctx { get; }

    /// <summary>Index in the tag map (rq->tag). I.</summary>
    internal int Tag { get; }

    internal BlkMqCtx? Ctx;       // rq->mq_ctx: the software queue it was allocated on
    internal Bio? Bio;            // rq->bio: first bio
    internal Bio? BioTail;        // rq->biotail
    internal long Sector;         // __sector
    internal uint DataLen;        // __data_len
    internal int NrPhysSegments;  // nr_phys_segments
    internal ReqOp Op;
    internal ReqFlags CmdFlags;
    internal long StartNs;        // start_time (ns): blk_account_io_start
    internal bool FailInjected;   // a bio of it was chosen by fault injection: issued as a NOP, completed with an error

    internal Request? QueueNext;  // queuelist: plug, software queue, dispatch list or delay list
    internal Request? QueuePrev;  // plug list only (merges look at the newest first)

    internal FlushSeq Seq;        // stages left; D, then C
    internal bool Started;        // D: the current stage has begun issuing
    internal Bio? CursorBio;      // D: next bio to issue
    internal BvecIter Cursor;     // D: position in CursorBio
    internal uint BytesIssued;    // D: bytes of the current stage issued so far
    internal long StageStartNs;   // D: when a preflush stage started issuing

    internal int IosPending;      // Interlocked: engine I/Os of the current stage not yet complete, plus one while issuing
    internal long BytesDone;      // C: bytes the engine reported for the current stage
    internal int Error;           // C: first error (-errno), 0 if none
    internal bool Delayed;        // C: fault injection already delayed its completion
    internal long DueNs;          // C: when a delayed completion is due

    /// <summary>blk_rq_sectors().</summary>
    internal long Sectors => DataLen >> Blk.SectorShift;

    /// <summary>The current flush stage (lowest pending bit).</summary>
    internal FlushSeq Stage => (FlushSeq)((int)Seq & -(int)Seq);

    /// <summary>blk_mq_rq_ctx_init() + blk_mq_bio_to_request(): the request starts out as <paramref name="bio"/>.</summary>
    internal void InitFromBio(BlkMqCtx ctx, Bio bio, long nowNs)
    {
        Ctx = ctx;
        Bio = bio;
        BioTail = bio;
        bio.Next = null;
        Sector = bio.Iter.BiSector;
        DataLen = bio.Iter.BiSize;
        NrPhysSegments = bio.PhysSegments;
        Op = bio.Iter.BiSize == 0 ? ReqOp.Flush : bio.BiOp; // an empty bio with a preflush is a pure flush
        CmdFlags = bio.BiFlags;
        StartNs = nowNs;
        FailInjected = (bio.State & BioState.FailInject) != 0;
        Seq = FlushSeq.Data;
        Started = false;
        Error = 0;
        Delayed = false;
    }

    /// <summary>Forgets everything before the tag is freed (blk_mq_free_request), so no bio outlives its request here.</summary>
    internal void Clear()
    {
        Ctx = null;
        Bio = null;
        BioTail = null;
        CursorBio = null;
        QueueNext = null;
        QueuePrev = null;
        Seq = FlushSeq.None;
        FailInjected = false;
    }
}
