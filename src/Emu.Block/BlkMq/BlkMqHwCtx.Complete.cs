// Mirrors: block/blk-mq.c (v4.4) completion side: blk_mq_complete_request, __blk_mq_end_request,
// blk_mq_end_request, blk_update_request's bio_endio loop, blk_mq_free_request; block/blk-flush.c's
// blk_flush_complete_seq (stage advance); and drivers/md/dm-delay.c's delayed completion list.
//
// Model: each hardware queue has one completion thread, an EmuTask named like a kernel irq thread
// ("irq/emu0-q0"), pinned to the queue's CPUs. It reaps engine completions in batches and, in interrupt context
// (EnterIrq: a sleep there is "BUG: scheduling while atomic", never a hang), ends each engine I/O; when a request's
// last I/O ends, the request either moves to its next flush stage (requeued) or finishes: statistics, bi_end_io of
// each bio, tag freed (which wakes a submitter sleeping for a tag). A fault-injected delay parks the finished
// request on a list ordered by due time that the same thread runs when due, so one slow I/O never holds back the
// completions behind it. Inline engines (null) complete on the submitting task, still in interrupt context.
// Differs: the waiting thread models the device interrupt: blocked in the engine's reap (a native wait) for the
// ring engines, or sleeping TASK_INTERRUPTIBLE on its own wait queue for the others. Statistics are accounted
// before the bios end, so a submitter woken by bi_end_io already sees its I/O counted.
using Emu.Interop;
using Emu.Kernel;

namespace Emu.Block;

internal sealed partial class BlkMqHwCtx
{
    private const long StopPollNs = 10_000_000;

    private readonly Lock _completeLock = new();   // C: completion of requests, statistics, delay list
    private readonly emu_completion[] _cqes;       // the completion thread's reap buffer
    private readonly emu_completion[] _inlineCqes; // C: inline completions' reap buffer
    private readonly Request[] _delayHeap;         // C: delayed requests, a min-heap on DueNs
    private readonly WaitQueueHead _irqWait;       // inline engines: where the completion thread sleeps
    private int _delayCount;                       // C
    private bool _inlineCompleting;                // C: an inline completion loop is running (re-entry is a no-op)
    private int _kicked;                           // A: the completion thread must look again
    private EmuTask? _completer;                   // C: the task completing now (completion thread or submitter)
    private long _nowNs;                           // C: the time of the batch being completed
    private volatile bool _stopping;               // the queue is going away; the thread exits when idle

    /// <summary>Completion statistics (per hardware queue, so one writer at a time). L: C.</summary>
    internal HctxStats Stats { get; } = new();

    /// <summary>The completion thread, once started.</summary>
    internal EmuTask? IrqTask { get; private set; }

    /// <summary>Runs <paramref name="action"/> with the completion lock held (consistent reads of <see cref="Stats"/>).</summary>
    internal void WithCompleteLock<TState>(Action<HctxStats, TState> action, TState state)
    {
        lock (_completeLock)
        {
            action(Stats, state);
        }
    }

    /// <summary>request_threaded_irq(): starts the completion thread, pinned to <paramref name="cpus"/> when given.</summary>
    internal void StartIrqThread(string comm, IReadOnlyList<int>? cpus)
    {
        var task = new EmuTask(comm, IrqThreadMain, parentPid: 2)
        {
            Flags = TaskFlags.Kthread | TaskFlags.NoFreeze,
            AllowedCpus = cpus,
        };
        IrqTask = task;
        task.Start();
    }

    /// <summary>
    /// Tells the completion thread to exit once no request holds a tag, and wakes it. Requests still in flight are
    /// completed first.
    /// </summary>
    internal void Stop()
    {
        _stopping = true;
        Kick();
    }

    private void IrqThreadMain()
    {
        EmuTask task = EmuTask.CurrentOrThrow;
        using KFrame frame = task.Enter("irq_thread");
        while (true)
        {
            long timeoutNs = NextDelayNs();
            if (_stopping && timeoutNs < 0)
            {
                if (Tags.InUse == 0)
                {
                    return;
                }

                // Draining: look again now and then, in case the kick NOP found the engine queue full.
                timeoutNs = StopPollNs;
            }

            int n = 0;
            if (Engine.CompletesInline)
            {
                WaitForKick(timeoutNs);
            }
            else
            {
                n = Engine.Reap(_cqes, timeoutNs);
                if (n < 0)
                {
                    Errno.ThrowIfError(n, $"reaping completions of {Queue.Disk.DiskName} hctx {QueueNum}");
                }

                Interlocked.Add(ref _iosInFlight, -n);
            }

            using (task.EnterIrq())
            {
                using KFrame handler = task.Enter("blk_mq_complete_request");
                lock (_completeLock)
                {
                    BeginBatchLocked(task);
                    for (int i = 0; i < n; i++)
                    {
                        CompleteIoLocked(in _cqes[i]);
                    }

                    RunDueDelaysLocked();
                }
            }

            if (Volatile.Read(ref _dispatchPending) != 0)
            {
                RunHwQueue();
            }
        }
    }

    // An inline engine has nothing to reap on this thread: it waits for a kick (a new delayed request, or stop)
    // or for the next delay to fall due.
    private void WaitForKick(long timeoutNs)
    {
        if (timeoutNs == 0)
        {
            return;
        }

        if (timeoutNs < 0)
        {
            Emu.Kernel.Wait.WaitEvent(_irqWait, static h => Volatile.Read(ref h._kicked) != 0, this, TaskState.Interruptible);
        }
        else
        {
            long ms = Math.Max(1, (timeoutNs + 999_999) / 1_000_000);
            Emu.Kernel.Wait.WaitEventTimeout(_irqWait, static h => Volatile.Read(ref h._kicked) != 0, this, ms, TaskState.Interruptible);
        }

        Volatile.Write(ref _kicked, 0);
    }

    // The submitter's side of an inline engine: reap and complete what Submit finished, in interrupt context. A
    // bi_end_io that submits again lands here re-entrantly and leaves its completions to the loop already running.
    private void CompleteInline()
    {
        EmuTask task = EmuTask.CurrentOrThrow;
        lock (_completeLock)
        {
            if (_inlineCompleting)
            {
                return;
            }

            _inlineCompleting = true;
            try
            {
                using IrqScope irq = task.EnterIrq();
                using KFrame handler = task.Enter("blk_mq_complete_request");
                int n;
                while ((n = Engine.Reap(_inlineCqes, 0)) > 0)
                {
                    Interlocked.Add(ref _iosInFlight, -n);
                    BeginBatchLocked(task);
                    for (int i = 0; i < n; i++)
                    {
                        CompleteIoLocked(in _inlineCqes[i]);
                    }
                }
            }
            finally
            {
                _inlineCompleting = false;
            }
        }
    }

    // Engine I/Os the engine refused: they end with the error, in completion context, on the submitting task.
    private void CompleteSynthetic(ulong[] tags, int error)
    {
        EmuTask task = EmuTask.CurrentOrThrow;
        using IrqScope irq = task.EnterIrq();
        lock (_completeLock)
        {
            BeginBatchLocked(task);
            foreach (ulong tag in tags)
            {
                CompleteIoLocked(new emu_completion { user_data = tag, res = error });
            }
        }
    }

    // One clock read and one io_ticks stamp per batch of completions, not per request. The requests about to
    // finish still count as in flight, so the time up to now counts as busy.
    private void BeginBatchLocked(EmuTask task)
    {
        _completer = task;
        _nowNs = Ktime.GetNs();
        Queue.Stats.UpdateIoTicks();
    }

    // One engine I/O is done; the request ends with its last one.
    private void CompleteIoLocked(in emu_completion cqe)
    {
        if (cqe.user_data == KickUserData)
        {
            return;
        }

        Request rq = Tags.Rqs[(int)cqe.user_data];
        if (cqe.res < 0)
        {
            if (rq.Error == 0)
            {
                rq.Error = cqe.res;
            }
        }
        else
        {
            rq.BytesDone += cqe.res;
        }

        if (Interlocked.Decrement(ref rq.IosPending) == 0)
        {
            EndStageLocked(rq);
        }
    }

    // blk_flush_complete_seq(): the stage is done; run the next one, or finish the request.
    private void EndStageLocked(Request rq)
    {
        FlushSeq stage = rq.Stage;
        if (rq.FailInjected)
        {
            rq.Error = Queue.Faults.InjectedError();
            rq.Seq = FlushSeq.None;
        }
        else if (stage == FlushSeq.Data)
        {
            if (rq.Error == 0 && rq.BytesDone != rq.DataLen)
            {
                rq.Error = -KErrno.EIO; // a short transfer: past the end of the backing file
            }

            rq.Seq &= ~FlushSeq.Data;
        }
        else
        {
            if (rq.Op != ReqOp.Flush)
            {
                Stats.AccountPreflush(_nowNs - rq.StageStartNs);
            }

            rq.Seq &= ~FlushSeq.Preflush;
        }

        if (rq.Seq != FlushSeq.None && rq.Error == 0)
        {
            // Whoever is completing (the completion thread, an inline or failed-submit completer) runs the queue
            // once it has dropped the completion lock.
            rq.Started = false;
            Requeue(rq);
            return;
        }

        FinishRequestLocked(rq);
    }

    // blk_mq_end_request(): statistics, bi_end_io of every bio, free the tag; or park it first if a delay applies.
    private void FinishRequestLocked(Request rq)
    {
        if (!rq.Delayed)
        {
            long delay = Queue.Faults.DelayNs(rq);
            if (delay > 0)
            {
                rq.Delayed = true;
                rq.DueNs = _nowNs + delay;
                PushDelayLocked(rq);
                if (_completer != IrqTask)
                {
                    Kick();
                }

                return;
            }
        }

        Stats.AccountDone(rq, _nowNs);
        if (KernelTrace.Enabled)
        {
            KernelTrace.BlockRqComplete(Queue.Disk.DiskName, QueueNum, (int)rq.Op, rq.Sector, rq.DataLen, rq.StartNs, _nowNs, rq.Error);
        }

        using KFrame frame = _completer!.Enter("blk_update_request");
        int error = rq.Error;
        Bio? bio = rq.Bio;
        while (bio is not null)
        {
            Bio? next = bio.Next;
            bio.Next = null;
            if (error != 0)
            {
                bio.BiError = error;
            }

            Bio.Endio(bio);
            bio = next;
        }

        rq.Clear();
        Tags.Put(rq);
    }

    private long NextDelayNs()
    {
        lock (_completeLock)
        {
            return _delayCount == 0 ? -1 : Math.Max(0, _delayHeap[0].DueNs - Ktime.GetNs());
        }
    }

    private void RunDueDelaysLocked()
    {
        if (_delayCount == 0)
        {
            return;
        }

        while (_delayCount > 0 && _delayHeap[0].DueNs <= _nowNs)
        {
            FinishRequestLocked(PopDelayLocked());
        }
    }

    private void PushDelayLocked(Request rq)
    {
        int i = _delayCount++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (_delayHeap[parent].DueNs <= rq.DueNs)
            {
                break;
            }

            _delayHeap[i] = _delayHeap[parent];
            i = parent;
        }

        _delayHeap[i] = rq;
    }

    private Request PopDelayLocked()
    {
        Request top = _delayHeap[0];
        Request last = _delayHeap[--_delayCount];
        _delayHeap[_delayCount] = null!;
        if (_delayCount > 0)
        {
            int i = 0;
            while (true)
            {
                int child = (i << 1) + 1;
                if (child >= _delayCount)
                {
                    break;
                }

                if (child + 1 < _delayCount && _delayHeap[child + 1].DueNs < _delayHeap[child].DueNs)
                {
                    child++;
                }

                if (last.DueNs <= _delayHeap[child].DueNs)
                {
                    break;
                }

                _delayHeap[i] = _delayHeap[child];
                i = child;
            }

            _delayHeap[i] = last;
        }

        return top;
    }
}
