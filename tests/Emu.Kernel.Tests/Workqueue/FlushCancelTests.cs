// kernel/workqueue.c (v4.4) flushing and cancelling: flush_workqueue (flush colors, flusher queue),
// flush_work (wq_barrier), drain_workqueue, destroy_workqueue, __cancel_work_timer (cancel_work_sync,
// cancel_delayed_work_sync), try_to_grab_pending, the delayed-work timer (queue_delayed_work,
// mod_delayed_work, cancel_delayed_work, flush_delayed_work) and non-reentrancy via find_worker_executing_work.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class FlushCancelTests : WorkqueueTestBase
{
    [Test]
    public void FlushWorkqueue_WaitsForItemsQueuedBeforeItButNotForItemsQueuedAfter()
    {
        Workqueue wq = Sys.AllocWorkqueue("flushme", WqFlags.Unbound, 0);
        var gateA = new Gate("a");
        var gateB = new Gate("b");
        TestWork a = Work("a_fn", _ => gateA.Wait());
        TestWork b = Work("b_fn", _ => gateB.Wait());
        wq.QueueWork(a);
        EmuTask flusher = EmuTask.Run("flusher", wq.FlushWorkqueue);
        WaitUntilSleeping(flusher);
        wq.QueueWork(b);
        WaitUntil(() => gateB.Waiting == 1, "b runs");

        gateA.Open();

        JoinOk(flusher);
        Assert.That(b.Runs, Is.Zero, "the flush returned while b, queued after it, still runs");
        gateB.Open();
        AsTask(wq.FlushWorkqueue);
    }

    [Test]
    public void FlushWorkqueue_TwoFlushers_CompleteInColorOrder()
    {
        Workqueue wq = Sys.AllocWorkqueue("colors", WqFlags.Unbound, 0);
        var log = new EventLog();
        var gateA = new Gate("a");
        var gateB = new Gate("b");
        TestWork a = Work("a_fn", _ => { gateA.Wait(); log.Add("a done"); });
        TestWork b = Work("b_fn", _ => { gateB.Wait(); log.Add("b done"); });

        wq.QueueWork(a);
        EmuTask first = EmuTask.Run("flusher1", () => { wq.FlushWorkqueue(); log.Add("flusher1 returns"); });
        WaitUntilSleeping(first);
        wq.QueueWork(b);
        EmuTask second = EmuTask.Run("flusher2", () => { wq.FlushWorkqueue(); log.Add("flusher2 returns"); });
        WaitUntilSleeping(second);

        gateB.Open();
        WaitUntil(() => b.Runs == 1, "b finished");
        Assert.That(second.HasExited, Is.False, "the second flusher waits behind the first one's color");

        gateA.Open();
        JoinOk(first);
        JoinOk(second);
        log.AssertBefore("b done", "a done");
        log.AssertBefore("a done", "flusher2 returns");
        log.AssertBefore("a done", "flusher1 returns");
    }

    [Test]
    public void FlushWorkqueue_CountsDelayedItems()
    {
        Workqueue wq = Sys.AllocWorkqueue("delayed_flush", WqFlags.Unbound, 1);
        var gate = new Gate("gate");
        TestWork blocker = Work("blocker_fn", _ => gate.Wait());
        TestWork delayed = Nop("delayed_fn");
        wq.QueueWork(blocker);
        wq.QueueWork(delayed);
        WaitUntil(() => gate.Waiting == 1, "the blocker runs");

        EmuTask flusher = EmuTask.Run("flusher", wq.FlushWorkqueue);
        WaitUntilSleeping(flusher);
        gate.Open();

        JoinOk(flusher);
        Assert.That(delayed.Runs, Is.EqualTo(1), "the delayed item was queued before the flush");
    }

    [Test]
    public void FlushWork_QueuedWork_WaitsUntilItRan()
    {
        Workqueue wq = Sys.AllocWorkqueue("flushwork", WqFlags.Unbound, 1);
        var gate = new Gate("gate");
        TestWork blocker = Work("blocker_fn", _ => gate.Wait());
        TestWork target = Nop("target_fn");
        wq.QueueWork(blocker);
        wq.QueueWork(target);
        WaitUntil(() => gate.Waiting == 1, "the blocker runs");
        bool flushed = false;

        EmuTask flusher = EmuTask.Run("flusher", () => flushed = Workqueue.FlushWork(target));
        WaitUntilSleeping(flusher);
        Assert.That(target.Runs, Is.Zero);
        gate.Open();

        JoinOk(flusher);
        Assert.That(flushed, Is.True);
        Assert.That(target.Runs, Is.EqualTo(1));
    }

    [Test]
    public void FlushWork_IdleWork_ReturnsFalseAtOnce()
    {
        TestWork work = Nop("idle_fn");
        bool flushed = true;

        AsTask(() => flushed = Workqueue.FlushWork(work));

        Assert.That(flushed, Is.False);
    }

    [Test]
    public void FlushWork_RunningWork_WaitsForTheRunningInstance()
    {
        var gate = new Gate("gate");
        TestWork work = Work("running_fn", _ => gate.Wait());
        Sys.SystemUnboundWq.QueueWork(work);
        WaitUntil(() => gate.Waiting == 1, "the work runs");

        EmuTask flusher = EmuTask.Run("flusher", () => Workqueue.FlushWork(work));
        WaitUntilSleeping(flusher);
        Assert.That(flusher.WaitingOn?.Describe(), Is.EqualTo("completion &barr->done"));
        gate.Open();

        JoinOk(flusher);
        Assert.That(work.Runs, Is.EqualTo(1));
    }

    [Test]
    public void CancelWorkSync_RacingARunningWork_ReturnsAfterItFinishedAndTheRequeueNeverRuns()
    {
        var log = new EventLog();
        var gate = new Gate("gate");
        TestWork work = Work("cancel_me_fn", _ =>
        {
            log.Add("work start");
            gate.Wait();
            log.Add("work end");
        });
        Sys.SystemUnboundWq.QueueWork(work);
        WaitUntil(() => gate.Waiting == 1, "the work runs");
        Assert.That(Sys.SystemUnboundWq.QueueWork(work), Is.True, "queued again while it runs");
        bool wasPending = false;

        EmuTask canceller = EmuTask.Run("canceller", () =>
        {
            wasPending = Workqueue.CancelWorkSync(work);
            log.Add("cancel returns");
        });
        WaitUntilSleeping(canceller);
        Assert.That(canceller.HasExited, Is.False);
        gate.Open();

        JoinOk(canceller);
        log.AssertBefore("work end", "cancel returns");
        Assert.That(wasPending, Is.True);
        Assert.That(work.Pending, Is.False);
        AsTask(Sys.SystemUnboundWq.FlushWorkqueue);
        Assert.That(work.Runs, Is.EqualTo(1), "the second queueing was cancelled");
        Assert.That(Sys.SystemUnboundWq.QueueWork(work), Is.True, "a cancelled work can be queued again");
    }

    [Test]
    public void CancelWorkSync_IdleWork_ReturnsFalse()
    {
        TestWork work = Nop("idle_fn");
        Sys.SystemWq.QueueWork(work);
        AsTask(() => Workqueue.FlushWork(work));
        bool wasPending = true;

        AsTask(() => wasPending = Workqueue.CancelWorkSync(work));

        Assert.That(wasPending, Is.False);
    }

    [Test]
    public void NonReentrancy_WorkRequeuedWhileRunning_RunsNextOnTheSameWorkerNeverConcurrently()
    {
        var gate = new Gate("gate");
        int running = 0;
        int maxRunning = 0;
        var tasks = new List<EmuTask>();
        TestWork work = Work("reentrant_fn", w =>
        {
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref maxRunning, now);
            lock (tasks)
            {
                tasks.Add(EmuTask.CurrentOrThrow);
            }

            if (w.Runs == 0)
            {
                gate.Wait();
            }

            Interlocked.Decrement(ref running);
        });
        Sys.SystemWq.QueueWorkOn(0, work);
        WaitUntil(() => gate.Waiting == 1, "the first run blocks");

        // Queued on the other CPU's pool, it must still go to the pool and worker running it.
        Assert.That(Sys.SystemWq.QueueWorkOn(1, work), Is.True);
        Assert.That(Workqueue.WorkBusy(work), Is.EqualTo(WorkBusyFlags.Pending | WorkBusyFlags.Running));
        gate.Open();

        WaitUntil(() => work.Runs == 2, "both runs finished");
        Assert.That(maxRunning, Is.EqualTo(1));
        Assert.That(tasks[1], Is.SameAs(tasks[0]));
        Assert.That(tasks[0].Comm, Does.StartWith("kworker/0:"));
    }

    [Test]
    public void NonReentrancy_UnboundPoolWithIdleWorkers_StillRunsTheRequeueOnTheSameWorker()
    {
        var gate = new Gate("gate");
        var tasks = new List<EmuTask>();
        TestWork work = Work("reentrant_fn", w =>
        {
            lock (tasks)
            {
                tasks.Add(EmuTask.CurrentOrThrow);
            }

            if (w.Runs == 0)
            {
                gate.Wait();
            }
        });
        Sys.SystemUnboundWq.QueueWork(work);
        WaitUntil(() => gate.Waiting == 1, "the first run blocks");
        WorkerPool pool = Sys.Pools().Single(p => p.Cpu < 0 && !p.Highpri);
        WaitUntil(() => pool.NrIdleSnapshot >= 1, "an idle worker is in reserve");

        // The requeue goes to the shared worklist; the idle worker that takes it must hand it to the worker
        // still running the work. An item queued behind it shows that the requeue has been dequeued.
        Sys.SystemUnboundWq.QueueWork(work);
        TestWork other = Nop("other_fn");
        Sys.SystemUnboundWq.QueueWork(other);
        WaitUntil(() => other.Runs == 1, "the item queued after the requeue ran");
        Assert.That(gate.Waiting, Is.EqualTo(1), "the requeue does not run beside the first run");
        Assert.That(work.Runs, Is.Zero);
        gate.Open();

        WaitUntil(() => work.Runs == 2, "both runs finished");
        Assert.That(tasks, Has.Count.EqualTo(2));
        Assert.That(tasks[1], Is.SameAs(tasks[0]));
    }

    [Test]
    public void DrainWorkqueue_WaitsForChainedItemsAndRefusesOutsiders()
    {
        Workqueue wq = Sys.AllocWorkqueue("drainme", WqFlags.Unbound, 0);
        int chain = 0;
        TestWork work = null!;
        TestWork outsider = Nop("outsider_fn");
        var gate = new Gate("gate");
        work = Work("chain_fn", w =>
        {
            if (Interlocked.Increment(ref chain) == 1)
            {
                gate.Wait();
            }

            if (Volatile.Read(ref chain) < 5)
            {
                wq.QueueWork(w);
            }
        });
        wq.QueueWork(work);
        WaitUntil(() => gate.Waiting == 1, "the chain starts");

        EmuTask drainer = EmuTask.Run("drainer", wq.DrainWorkqueue);
        WaitUntilSleeping(drainer);
        wq.QueueWork(outsider);
        gate.Open();

        JoinOk(drainer);
        Assert.That(chain, Is.EqualTo(5), "chained queueing is allowed while draining and waited for");
        Assert.That(outsider.Runs, Is.Zero);
        Assert.That(Log.Lines, Has.Some.Contains("queueing while draining from outside the workqueue"));
    }

    [Test]
    public void DestroyWorkqueue_RunsPendingItemsAndStopsTheRescuer()
    {
        Workqueue wq = Sys.AllocWorkqueue("doomed", WqFlags.Unbound | WqFlags.MemReclaim, 1);
        EmuTask rescuer = wq.Rescuer!;
        TestWork[] works = Enumerable.Range(0, 3).Select(i => Work($"w{i}", _ => Sched.Msleep(1))).ToArray();
        foreach (TestWork w in works)
        {
            wq.QueueWork(w);
        }

        AsTask(wq.DestroyWorkqueue);

        Assert.That(works.Select(w => w.Runs), Is.All.EqualTo(1));
        Assert.That(rescuer.HasExited, Is.True);
        Assert.That(wq.IsDestroyed, Is.True);
        Assert.That(Sys.Workqueues(), Does.Not.Contain(wq));
    }

    [Test]
    public void QueueDelayedWork_ZeroDelay_QueuesAtOnce()
    {
        var dwork = new TestDelayedWork("dwork_fn");

        Assert.That(Sys.SystemWq.QueueDelayedWork(dwork, 0), Is.True);

        Assert.That(dwork.Timer.TimerPending, Is.False);
        WaitUntil(() => dwork.Runs == 1, "the delayed work ran");
    }

    [Test]
    public void QueueDelayedWork_RunsAfterTheTimerAndIsPendingMeanwhile()
    {
        var dwork = new TestDelayedWork("dwork_fn");

        Assert.That(Sys.SystemUnboundWq.QueueDelayedWork(dwork, 20), Is.True);
        Assert.That(Sys.SystemUnboundWq.QueueDelayedWork(dwork, 20), Is.False, "already pending");
        Assert.That(dwork.DelayedWorkPending, Is.True);

        WaitUntil(() => dwork.Runs == 1, "the delayed work ran");
        Assert.That(dwork.Pending, Is.False);
    }

    [Test]
    public void ModDelayedWork_PendingWorkWithZeroDelay_RunsNow()
    {
        var dwork = new TestDelayedWork("dwork_fn");
        Sys.SystemWq.QueueDelayedWork(dwork, 600_000);

        Assert.That(Sys.SystemWq.ModDelayedWork(dwork, 0), Is.True, "it was pending");

        WaitUntil(() => dwork.Runs == 1, "the delayed work ran");
        Assert.That(dwork.Timer.TimerPending, Is.False);
    }

    [Test]
    public void ModDelayedWork_IdleWork_QueuesItAndReturnsFalse()
    {
        var dwork = new TestDelayedWork("dwork_fn");

        Assert.That(Sys.SystemWq.ModDelayedWork(dwork, 1), Is.False);

        WaitUntil(() => dwork.Runs == 1, "the delayed work ran");
    }

    [Test]
    public void CancelDelayedWork_BeforeTheTimerFires_KillsIt()
    {
        var dwork = new TestDelayedWork("dwork_fn");
        Sys.SystemWq.QueueDelayedWork(dwork, 600_000);

        Assert.That(Workqueue.CancelDelayedWork(dwork), Is.True);

        Assert.That(dwork.Pending, Is.False);
        Assert.That(dwork.Timer.TimerPending, Is.False);
        Assert.That(Workqueue.CancelDelayedWork(dwork), Is.False, "nothing left to cancel");
        bool flushed = true;
        AsTask(() => flushed = Workqueue.FlushDelayedWork(dwork));
        Assert.That(flushed, Is.False);
        Assert.That(dwork.Runs, Is.Zero);
    }

    [Test]
    public void FlushDelayedWork_ArmedTimer_QueuesNowAndWaits()
    {
        var dwork = new TestDelayedWork("dwork_fn");
        Sys.SystemUnboundWq.QueueDelayedWork(dwork, 600_000);
        bool flushed = false;

        AsTask(() => flushed = Workqueue.FlushDelayedWork(dwork));

        Assert.That(flushed, Is.True);
        Assert.That(dwork.Runs, Is.EqualTo(1));
    }

    [Test]
    public void CancelDelayedWorkSync_ArmedTimer_ReturnsTrueAndTheWorkNeverRuns()
    {
        var dwork = new TestDelayedWork("dwork_fn");
        Sys.SystemWq.QueueDelayedWork(dwork, 50);
        bool wasPending = false;

        AsTask(() => wasPending = Workqueue.CancelDelayedWorkSync(dwork));

        Assert.That(wasPending, Is.True);
        Assert.That(dwork.Timer.TimerPending, Is.False, "the timer is dead");
        Assert.That(dwork.Pending, Is.False, "and nothing holds PENDING to queue it");
        Assert.That(dwork.Runs, Is.Zero);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
