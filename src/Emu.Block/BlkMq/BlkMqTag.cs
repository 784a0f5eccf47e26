// Mirrors: block/blk-mq-tag.c (v4.4): blk_mq_init_tags, __bt_get, bt_get, blk_mq_get_tag, blk_mq_put_tag,
// bt_clear_tag; and the static request map of blk_mq_init_rq_map.
//
// Model: each hardware queue owns queue_depth tags, a bitmap of 64-bit words claimed with compare-and-swap, and
// one preallocated request per tag. A submitter that finds no free tag sleeps uninterruptibly on the tags' wait
// queue through the kernel's sleeping path (prepare_to_wait_exclusive, io_schedule, finish_wait), after kicking
// the hardware queue and flushing its own plug (whose requests hold tags: sleeping on them would never end). A
// freed tag wakes one waiter. So a task starved of tags is what the hung-task detector would report: state
// UNINTERRUPTIBLE, waiting on "tags of <disk> hctx N", inside blk_mq_get_tag.
// Differs: one wait queue per tag map instead of v4.4's BT_WAIT_QUEUES (8) with wake batching; a waiter keeps the
// hardware queue it started on instead of re-mapping to the CPU it wakes on; no reserved tags.
using System.Numerics;
using Emu.Kernel;

namespace Emu.Block;

/// <summary>struct blk_mq_tags: the tags and requests of one hardware queue.</summary>
internal sealed class BlkMqTags : IWaitResource
{
    private readonly ulong[] _words;      // bitmap_tags: bit set = tag in use; Interlocked
    private readonly BlkMqHwCtx _hctx;    // I

    internal BlkMqTags(BlkMqHwCtx hctx, int nrTags)
    {
        _hctx = hctx;
        NrTags = nrTags;
        _words = new ulong[(nrTags + 63) >> 6];
        Rqs = new Request[nrTags];
        for (int tag = 0; tag < nrTags; tag++)
        {
            Rqs[tag] = new Request(hctx, tag);
        }

        Wait = new WaitQueueHead(this);
    }

    /// <summary>Tags in the map (nr_tags). I.</summary>
    internal int NrTags { get; }

    /// <summary>The request of each tag (tags->rqs). I.</summary>
    internal Request[] Rqs { get; }

    /// <summary>Where submitters sleep for a free tag (bt_wait_state.wait).</summary>
    internal WaitQueueHead Wait { get; }

    /// <summary>Tags in use now (racy snapshot).</summary>
    internal int InUse
    {
        get
        {
            int used = 0;
            for (int w = 0; w < _words.Length; w++)
            {
                used += BitOperations.PopCount(Volatile.Read(ref _words[w]));
            }

            return used;
        }
    }

    /// <summary>__bt_get(): claims a free tag without sleeping, starting the search at <paramref name="lastTag"/>.</summary>
    /// <returns>The tag's request, or null when every tag is in use.</returns>
    internal Request? TryGet(ref int lastTag)
    {
        int nrWords = _words.Length;
        int w = (int)((uint)lastTag % (uint)NrTags) >> 6;
        for (int i = 0; i < nrWords; i++)
        {
            ulong valid = ValidMask(w);
            while (true)
            {
                ulong word = Volatile.Read(ref _words[w]);
                ulong free = ~word & valid;
                if (free == 0)
                {
                    break;
                }

                int bit = BitOperations.TrailingZeroCount(free);
                ulong claimed = word | (1UL << bit);
                if (Interlocked.CompareExchange(ref _words[w], claimed, word) == word)
                {
                    int tag = (w << 6) + bit;
                    lastTag = tag + 1;
                    return Rqs[tag];
                }
            }

            if (++w == nrWords)
            {
                w = 0;
            }
        }

        return null;
    }

    /// <summary>
    /// bt_get(): sleeps until a tag is free. Before each sleep the hardware queue is run and the caller's plug
    /// flushed, as v4.4 does (blk_mq_run_hw_queue here, the plug from io_schedule's sched_submit_work).
    /// </summary>
    /// <returns>The tag's request, or null when the caller is in atomic context (the sleep is reported as a BUG).</returns>
    internal Request? Get(ref int lastTag)
    {
        Request? rq = TryGet(ref lastTag);
        return rq ?? GetSlow(ref lastTag);
    }

    /// <summary>blk_mq_put_tag(): frees the tag of <paramref name="rq"/> and wakes one sleeper.</summary>
    internal void Put(Request rq)
    {
        int tag = rq.Tag;
        // The full fence of the And orders the free before the waitqueue_active() check, pairing with the
        // sleeper's prepare_to_wait (state store, then a second look at the bitmap).
        Interlocked.And(ref _words[tag >> 6], ~(1UL << (tag & 63)));
        if (Wait.Active)
        {
            Emu.Kernel.Wait.WakeUp(Wait);
        }
    }

    /// <inheritdoc />
    public string Describe() => $"tag of {_hctx.Queue.Disk.DiskName} hctx {_hctx.QueueNum} (queue_depth {NrTags})";

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
        // Tags are held by I/O in flight, not by a task.
    }

    private Request? GetSlow(ref int lastTag)
    {
        EmuTask task = EmuTask.CurrentOrThrow;
        using KFrame getTag = task.Enter("blk_mq_get_tag");
        using KFrame btGet = task.Enter("bt_get");
        WaitQueueEntry entry = task.WaitEntry;
        Request? rq;
        while (true)
        {
            Emu.Kernel.Wait.PrepareToWaitExclusive(Wait, entry, TaskState.Uninterruptible);
            rq = TryGet(ref lastTag);
            if (rq is not null)
            {
                break;
            }

            // Out of tags: push out what is queued, including this task's own plugged requests, and retry, as
            // running the queue may also have reaped completions.
            BlkPlug? plug = BlkCore.CurrentPlug;
            if (plug is not null && plug.Count != 0)
            {
                BlkCore.BlkFlushPlugList(plug, fromSchedule: true);
            }

            _hctx.RunHwQueue();
            rq = TryGet(ref lastTag);
            if (rq is not null)
            {
                break;
            }

            if (task.InAtomic)
            {
                // schedule() reports "scheduling while atomic" and returns; sleeping on would spin on the CPU that
                // may be the one to complete the I/O, so the allocation fails instead.
                Sched.IoSchedule();
                break;
            }

            Sched.IoSchedule();
        }

        Emu.Kernel.Wait.FinishWait(Wait, entry);
        return rq;
    }

    private ulong ValidMask(int word)
    {
        int bits = Math.Min(64, NrTags - (word << 6));
        return bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
    }
}
