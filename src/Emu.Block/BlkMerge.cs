// Mirrors: block/blk-merge.c (v4.4): blk_queue_split / blk_bio_segment_split, ll_back_merge_fn,
// ll_front_merge_fn, blk_rq_merge_ok, blk_try_merge.
//
// Model: a segment is a run of contiguous memory (one engine I/O). A bio larger than the queue's request size, or
// with more segments than it allows, is split: the front part is cloned off (sharing vectors), chained to the
// original so the original completes only when both parts have, and submitted first; the rest continues. A bio
// merges into a request only when both move data the same way with the same flags, neither was chosen by fault
// injection, the sectors are adjacent, and the result stays within the size and segment limits.
// Differs: segment counting treats every vector boundary between non-contiguous memory as a new segment, with no
// maximum segment size; splits fall on logical-block boundaries.
namespace Emu.Block;

/// <summary>Where a bio would join a request (ELEVATOR_*_MERGE).</summary>
internal enum ElvMerge
{
    /// <summary>ELEVATOR_NO_MERGE.</summary>
    NoMerge,

    /// <summary>The bio starts where the request ends. ELEVATOR_BACK_MERGE.</summary>
    BackMerge,

    /// <summary>The bio ends where the request starts. ELEVATOR_FRONT_MERGE.</summary>
    FrontMerge,
}

/// <summary>Splitting and merge rules (blk-merge.c).</summary>
internal static class BlkMerge
{
    /// <summary>
    /// blk_queue_split(): when <paramref name="bio"/> exceeds the queue's limits, splits off and returns its front
    /// part (chained to <paramref name="bio"/>, which is advanced past it); else null. Sets the segment counts.
    /// </summary>
    internal static Bio? BlkQueueSplit(RequestQueue q, Bio bio)
    {
        uint size = bio.Iter.BiSize;
        if (size == 0)
        {
            bio.PhysSegments = 0;
            return null;
        }

        uint maxBytes = (uint)q.Limits.MaxBytes;
        int maxSegments = q.Limits.MaxSegments;
        BvecIter it = bio.Iter;
        int segments = 0;
        uint bytes = 0;
        nint prevEnd = 0;
        while (it.BiSize > 0)
        {
            (nint address, uint len) = it.Current(bio.IoVec);
            bool newSegment = segments == 0 || address != prevEnd;
            if ((newSegment && segments == maxSegments) || bytes + (ulong)len > maxBytes)
            {
                uint limit = bytes + (ulong)len > maxBytes ? maxBytes : bytes;
                return SplitAt(q, bio, limit);
            }

            if (newSegment)
            {
                segments++;
            }

            bytes += len;
            prevEnd = address + (nint)len;
            it.Advance(bio.IoVec, len);
        }

        bio.PhysSegments = segments;
        return null;
    }

    /// <summary>blk_rq_merge_ok(): whether <paramref name="bio"/> may join <paramref name="rq"/> at all.</summary>
    internal static bool BlkRqMergeOk(Request rq, Bio bio) =>
        rq.Op == bio.BiOp && rq.Op != ReqOp.Flush && rq.CmdFlags == bio.BiFlags && rq.Seq == FlushSeq.Data &&
        !rq.FailInjected && (bio.State & BioState.FailInject) == 0;

    /// <summary>blk_try_merge(): which end of <paramref name="rq"/> the bio is adjacent to.</summary>
    internal static ElvMerge BlkTryMerge(Request rq, Bio bio)
    {
        if (rq.Sector + rq.Sectors == bio.Iter.BiSector)
        {
            return ElvMerge.BackMerge;
        }

        if (rq.Sector - (bio.Iter.BiSize >> Blk.SectorShift) == bio.Iter.BiSector)
        {
            return ElvMerge.FrontMerge;
        }

        return ElvMerge.NoMerge;
    }

    /// <summary>ll_back_merge_fn(): the request stays within max_sectors and max_segments with the bio appended.</summary>
    internal static bool LlBackMergeFn(RequestQueue q, Request rq, Bio bio) => FitsLimits(q, rq, bio);

    /// <summary>ll_front_merge_fn(): as <see cref="LlBackMergeFn"/>, for a bio prepended.</summary>
    internal static bool LlFrontMergeFn(RequestQueue q, Request rq, Bio bio) => FitsLimits(q, rq, bio);

    private static bool FitsLimits(RequestQueue q, Request rq, Bio bio) =>
        ((long)rq.DataLen + bio.Iter.BiSize) >> Blk.SectorShift <= q.Limits.MaxSectors &&
        rq.NrPhysSegments + bio.PhysSegments <= q.Limits.MaxSegments;

    // blk_bio_segment_split()'s "split:" with the first `bytes` going into the new bio.
    private static Bio SplitAt(RequestQueue q, Bio bio, uint bytes)
    {
        uint lbs = q.Limits.LogicalBlockSize;
        uint aligned = bytes / lbs * lbs;
        if (aligned != 0)
        {
            bytes = aligned;
        }

        Bio split = bio.Split((int)(bytes >> Blk.SectorShift), q.BioSplit);
        split.Chain(bio);
        split.PhysSegments = CountSegments(split);
        return split;
    }

    private static int CountSegments(Bio bio)
    {
        BvecIter it = bio.Iter;
        int segments = 0;
        nint prevEnd = 0;
        while (it.BiSize > 0)
        {
            (nint address, uint len) = it.Current(bio.IoVec);
            if (segments == 0 || address != prevEnd)
            {
                segments++;
            }

            prevEnd = address + (nint)len;
            it.Advance(bio.IoVec, len);
        }

        return segments;
    }
}
