// Mirrors: block/blk-core.c (v4.4): submit_bio, generic_make_request, generic_make_request_checks (bio_check_eod,
// should_fail_request), blk_start_plug, blk_finish_plug, blk_flush_plug_list, blk_attempt_plug_merge,
// bio_attempt_back_merge, bio_attempt_front_merge, blk_account_io_start.
//
// Model: submit_bio hands a bio to its disk's queue (make_request_fn = blk_mq_make_request). A task may hold a plug
// (current->plug) between blk_start_plug and blk_finish_plug: requests collect there, and a new bio first tries to
// extend one of them (back merge: it starts where the request ends; front merge: it ends where the request
// starts), same operation and flags, within the queue's size and segment limits; a gap, another operation or other
// flags start a new request. Finishing (or overflowing) the plug inserts the requests into their software queues
// and runs the hardware queues, so a whole batch reaches the engine in one call. Submission pushes the kernel's
// frames on the task's shadow stack (submit_bio, generic_make_request, blk_mq_make_request, ...).
// Differs: the plug list is kept in submission order (v4.4 sorts it by software queue and sector on flush), and
// v4.4's current->bio_list recursion guard is not needed: splits are submitted iteratively. A task that sleeps
// holding a plug has it flushed by schedule() (sched_submit_work), through EmuTask.Plug; sleeping for a tag
// flushes it too, as v4.4 does.
using Emu.Kernel;

namespace Emu.Block;

/// <summary>struct blk_plug: requests a task holds back to issue together.</summary>
public sealed class BlkPlug : ITaskPlug
{
    internal Request? Head;   // mq_list, oldest first; owned by the plugging task
    internal Request? Tail;
    internal readonly BlkMqHwCtx?[] Touched = new BlkMqHwCtx?[4]; // hardware queues to run on flush

    /// <summary>Requests held.</summary>
    public int Count { get; internal set; }

    /// <inheritdoc/>
    public bool NeedsFlush => Count != 0;

    /// <inheritdoc/>
    public void ScheduleFlush()
    {
        using KFrame frame = KFunc.Enter("blk_schedule_flush_plug");
        BlkCore.BlkFlushPlugList(this, fromSchedule: true);
    }

    internal void Add(Request rq)
    {
        rq.QueueNext = null;
        rq.QueuePrev = Tail;
        if (Tail is null)
        {
            Head = rq;
        }
        else
        {
            Tail.QueueNext = rq;
        }

        Tail = rq;
        Count++;
    }
}

/// <summary>Bio submission and plugging (blk-core.c).</summary>
public static class BlkCore
{
    [ThreadStatic]
    private static BlkPlug? t_plug; // current->plug: an EmuTask is one thread

    /// <summary>current->plug: the calling task's active plug, or null.</summary>
    public static BlkPlug? CurrentPlug => t_plug;

    /// <summary>
    /// submit_bio(): queues <paramref name="bio"/> for its disk (<see cref="Bio.BiDisk"/>). May sleep (uninterruptibly,
    /// in blk_mq_get_tag) when the hardware queue is out of tags, so it must run on an EmuTask. Completion comes
    /// through <see cref="Bio.BiEndIo"/> in completion context, possibly before this returns.
    /// </summary>
    public static void SubmitBio(Bio bio)
    {
        ArgumentNullException.ThrowIfNull(bio);
        EmuTask task = EmuTask.CurrentOrThrow;
        using KFrame frame = task.Enter("submit_bio");
        Sched.Point(SchedPoint.SubmitBio);
        GenericMakeRequest(task, bio);
    }

    /// <summary>
    /// generic_make_request(): checks the bio and passes it to its queue's make_request_fn. Like
    /// <see cref="SubmitBio"/>, it may sleep for a tag, so it must run on an EmuTask.
    /// </summary>
    public static void GenericMakeRequest(Bio bio)
    {
        ArgumentNullException.ThrowIfNull(bio);
        GenericMakeRequest(EmuTask.CurrentOrThrow, bio);
    }

    private static void GenericMakeRequest(EmuTask task, Bio bio)
    {
        using KFrame frame = task.Enter("generic_make_request");
        GenDisk disk = bio.BiDisk ?? throw new ArgumentException("bio->bi_disk is not set", nameof(bio));
        RequestQueue q = disk.Queue;
        if (!GenericMakeRequestChecks(q, bio))
        {
            return;
        }

        BlkMq.MakeRequest(task, q, bio);
    }

    /// <summary>
    /// blk_start_plug(): from now on the task's bios collect in <paramref name="plug"/>. Nested plugs leave the outer
    /// one in charge.
    /// </summary>
    public static void BlkStartPlug(BlkPlug plug)
    {
        ArgumentNullException.ThrowIfNull(plug);
        if (t_plug is not null)
        {
            return;
        }

        plug.Head = null;
        plug.Tail = null;
        plug.Count = 0;
        t_plug = plug;
        if (EmuTask.Current is { } task)
        {
            task.Plug = plug;
        }
    }

    /// <summary>blk_finish_plug(): issues what <paramref name="plug"/> holds and ends plugging (outermost plug only).</summary>
    public static void BlkFinishPlug(BlkPlug plug)
    {
        ArgumentNullException.ThrowIfNull(plug);
        if (plug != t_plug)
        {
            return;
        }

        BlkFlushPlugList(plug, fromSchedule: false);
        t_plug = null;
        if (EmuTask.Current is { } task)
        {
            task.Plug = null;
        }
    }

    /// <summary>
    /// blk_flush_plug_list() / blk_mq_flush_plug_list(): inserts the plugged requests into their software queues
    /// (consecutive requests of one queue in one insertion) and runs each hardware queue they went to.
    /// </summary>
    public static void BlkFlushPlugList(BlkPlug plug, bool fromSchedule)
    {
        ArgumentNullException.ThrowIfNull(plug);
        if (plug.Head is null)
        {
            return;
        }

        using KFrame frame = KFunc.Enter("blk_flush_plug_list");
        Request? rq = plug.Head;
        plug.Head = null;
        plug.Tail = null;
        plug.Count = 0;
        BlkMqHwCtx?[] touched = plug.Touched;
        int nTouched = 0;
        while (rq is not null)
        {
            BlkMqCtx ctx = rq.Ctx!;
            Request head = rq;
            Request tail = rq;
            Request? next = rq.QueueNext;
            while (next is not null && next.Ctx == ctx)
            {
                tail = next;
                next = next.QueueNext;
            }

            ctx.InsertRequests(head, tail);
            BlkMqHwCtx hctx = ctx.Hctx;
            if (Array.IndexOf(touched, hctx, 0, nTouched) < 0)
            {
                if (nTouched == touched.Length)
                {
                    hctx.RunHwQueue();
                }
                else
                {
                    touched[nTouched++] = hctx;
                }
            }

            rq = next;
        }

        for (int i = 0; i < nTouched; i++)
        {
            BlkMqHwCtx hctx = touched[i]!;
            touched[i] = null;
            hctx.RunHwQueue();
        }
    }

    /// <summary>
    /// blk_attempt_plug_merge(): tries to add <paramref name="bio"/> to a request in the current plug, newest first.
    /// <paramref name="requestCount"/> is how many plugged requests are for <paramref name="q"/>.
    /// </summary>
    internal static bool BlkAttemptPlugMerge(RequestQueue q, Bio bio, BlkPlug plug, out int requestCount)
    {
        requestCount = 0;
        for (Request? rq = plug.Tail; rq is not null; rq = rq.QueuePrev)
        {
            if (rq.Hctx.Queue != q)
            {
                continue;
            }

            requestCount++;
            ElvMerge where = BlkMerge.BlkTryMerge(rq, bio);
            if (where == ElvMerge.NoMerge || !BlkMerge.BlkRqMergeOk(rq, bio))
            {
                continue;
            }

            switch (where)
            {
                case ElvMerge.BackMerge:
                    if (BioAttemptBackMerge(q, rq, bio))
                    {
                        return true;
                    }

                    break;
                case ElvMerge.FrontMerge:
                    if (BioAttemptFrontMerge(q, rq, bio))
                    {
                        return true;
                    }

                    break;
            }
        }

        return false;
    }

    /// <summary>bio_attempt_back_merge(): appends the bio to the request if the limits allow.</summary>
    internal static bool BioAttemptBackMerge(RequestQueue q, Request rq, Bio bio)
    {
        if (!BlkMerge.LlBackMergeFn(q, rq, bio))
        {
            return false;
        }

        bio.Next = null;
        rq.BioTail!.Next = bio;
        rq.BioTail = bio;
        rq.DataLen += bio.Iter.BiSize;
        rq.NrPhysSegments += bio.PhysSegments;
        BlkAccountIoMerge(q, rq);
        return true;
    }

    /// <summary>bio_attempt_front_merge(): prepends the bio to the request if the limits allow.</summary>
    internal static bool BioAttemptFrontMerge(RequestQueue q, Request rq, Bio bio)
    {
        if (!BlkMerge.LlFrontMergeFn(q, rq, bio))
        {
            return false;
        }

        bio.Next = rq.Bio;
        rq.Bio = bio;
        rq.Sector = bio.Iter.BiSector;
        rq.DataLen += bio.Iter.BiSize;
        rq.NrPhysSegments += bio.PhysSegments;
        BlkAccountIoMerge(q, rq);
        return true;
    }

    /// <summary>blk_account_io_start(rq, new_io): a new request is in flight (per-CPU counter, io_ticks stamp).</summary>
    internal static void BlkAccountIoStart(RequestQueue q, Request rq)
    {
        // Stamped before the increment: the time up to now was busy only if other requests were in flight.
        q.Stats.UpdateIoTicks();
        Interlocked.Increment(ref rq.Ctx!.Stats.Started(rq.Op));
    }

    // blk_account_io_start(rq, false): a bio merged into a request (merges[rw], on the CPU doing it).
    private static void BlkAccountIoMerge(RequestQueue q, Request rq) =>
        Interlocked.Increment(ref q.CurrentCtx().Stats.Merged(rq.Op));

    // generic_make_request_checks(): false when the bio was ended here.
    private static bool GenericMakeRequestChecks(RequestQueue q, Bio bio)
    {
        if (q.Dying)
        {
            bio.BiError = -KErrno.ENODEV;
            Bio.Endio(bio);
            return false;
        }

        if (bio.BiOp == ReqOp.Flush && bio.Iter.BiSize != 0)
        {
            ThrowHelper.ThrowArgument(nameof(bio), "a flush bio carries no data");
        }

        long sectors = bio.Iter.BiSize >> Blk.SectorShift;
        if (bio.Iter.BiSector < 0 || bio.Iter.BiSector + sectors > q.Disk.Capacity)
        {
            HandleBadSector(q, bio);
            bio.IoError();
            return false;
        }

        if (bio.Iter.BiSize == 0 && bio.BiOp != ReqOp.Flush && (bio.BiFlags & ReqFlags.Preflush) == 0)
        {
            // An empty bio with nothing to flush is done (v4.4: "if (!nr_sectors) goto end_io" with err 0).
            Bio.Endio(bio);
            return false;
        }

        if (q.Faults.ShouldFail(bio))
        {
            bio.State |= BioState.FailInject;
        }

        return true;
    }

    // handle_bad_sector()
    private static void HandleBadSector(RequestQueue q, Bio bio)
    {
        Klog.Printk("attempt to access beyond end of device");
        Klog.Printk($"{q.Disk.DiskName}: rw={(int)bio.BiOp}, want={bio.Iter.BiSector + (bio.Iter.BiSize >> Blk.SectorShift)}, limit={q.Disk.Capacity}");
    }
}
