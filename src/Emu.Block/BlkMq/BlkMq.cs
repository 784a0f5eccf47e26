// Mirrors: block/blk-mq.c (v4.4) submission side: blk_mq_make_request, blk_mq_map_request,
// blk_mq_bio_to_request, blk_mq_insert_request, blk_mq_run_hw_queue's callers.
//
// Model: a bio is split to the queue's limits, then either merged into a request of the task's plug, or given a
// request (a tag of the hardware queue its CPU maps to, sleeping for one if none is free). Flush and FUA requests
// go straight to the flush machinery and the queue; other new requests go to the plug when the task has one
// (flushing it first once it holds BLK_MAX_REQUEST_COUNT requests of this queue), else to the software queue,
// and the hardware queue runs at once.
// Differs: v4.4's blk_mq_make_request (several hardware queues) plugs at most one request per queue; Emu plugs
// like blk_sq_make_request for every queue, so a plugged batch becomes one engine submission.
using Emu.Kernel;

namespace Emu.Block;

/// <summary>blk-mq request submission.</summary>
internal static class BlkMq
{
    /// <summary>blk_mq_make_request(): the make_request_fn of every Emu queue.</summary>
    internal static void MakeRequest(EmuTask task, RequestQueue q, Bio bio)
    {
        using KFrame frame = task.Enter("blk_mq_make_request");
        while (true)
        {
            Bio? split = BlkMerge.BlkQueueSplit(q, bio);
            MakeRequestOne(q, split ?? bio);
            if (split is null)
            {
                return;
            }
        }
    }

    private static void MakeRequestOne(RequestQueue q, Bio bio)
    {
        bool isFlushFua = bio.BiOp == ReqOp.Flush || (bio.BiFlags & (ReqFlags.Preflush | ReqFlags.Fua)) != 0;
        BlkPlug? plug = BlkCore.CurrentPlug;
        int requestCount = 0;
        if (!isFlushFua && plug is not null && BlkCore.BlkAttemptPlugMerge(q, bio, plug, out requestCount))
        {
            return;
        }

        Request? rq = BlkMqMapRequest(q, bio);
        if (rq is null)
        {
            return;
        }

        if (isFlushFua)
        {
            BlkFlush.BlkInsertFlush(rq);
            InsertRequest(rq);
            return;
        }

        if (plug is not null)
        {
            if (requestCount >= Blk.MaxRequestCount)
            {
                BlkCore.BlkFlushPlugList(plug, fromSchedule: false);
            }

            plug.Add(rq);
            return;
        }

        InsertRequest(rq);
    }

    // blk_mq_map_request(): a tag on the hardware queue of this CPU, the request initialized from the bio.
    private static Request? BlkMqMapRequest(RequestQueue q, Bio bio)
    {
        BlkMqCtx ctx = q.CurrentCtx();
        Request? rq = ctx.Hctx.Tags.Get(ref ctx.LastTag);
        if (rq is null)
        {
            // Only in atomic context, where the sleep for a tag was reported as a BUG instead.
            bio.IoError();
            return null;
        }

        rq.InitFromBio(ctx, bio, Ktime.GetNs());
        BlkCore.BlkAccountIoStart(q, rq);
        return rq;
    }

    // blk_mq_insert_request(..., run_queue = true): into the software queue, then run the hardware queue.
    private static void InsertRequest(Request rq)
    {
        BlkMqCtx ctx = rq.Ctx!;
        ctx.InsertRequests(rq, rq);
        ctx.Hctx.RunHwQueue();
    }
}
