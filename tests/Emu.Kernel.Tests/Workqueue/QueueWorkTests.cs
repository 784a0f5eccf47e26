// kernel/workqueue.c (v4.4) queueing: queue_work_on / __queue_work (PENDING, pwq choice, max_active and
// delayed works, non-reentrancy), process_one_work (PENDING cleared before the call, pseudo-locks, shadow
// stack), print_worker_info, create_worker naming, workqueue_set_max_active.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class QueueWorkTests : WorkqueueTestBase
{
    [Test]
    public void QueueWork_RunsTheWorkOnAKworker()
    {
        TestWork work = Nop("nop_fn");

        Assert.That(Sys.SystemUnboundWq.QueueWork(work), Is.True);

        WaitUntil(() => work.Runs == 1, "the work ran");
        Assert.That(work.LastTask!.Comm, Does.StartWith("kworker/u"));
        Assert.That(work.Pending, Is.False);
    }

    [Test]
    public void QueueWorkOn_BoundWorkqueue_RunsOnThatCpusPool()
    {
        TestWork work = Nop("nop_fn");

        Sys.SystemWq.QueueWorkOn(1, work);

        WaitUntil(() => work.Runs == 1, "the work ran");
        Assert.That(work.LastTask!.Comm, Does.StartWith("kworker/1:"));
        Assert.That(Sys.CpuWorkerPool(1, highpri: false).WorkerTasks(), Does.Contain(work.LastTask));
    }

    [Test]
    public void QueueWork_WhenAlreadyPending_ReturnsFalse()
    {
        Workqueue wq = Sys.AllocWorkqueue("test_wq", WqFlags.Unbound, 1);
        var gate = new Gate("gate");
        TestWork blocker = Work("blocker_fn", _ => gate.Wait());
        TestWork queued = Nop("queued_fn");
        wq.QueueWork(blocker);
        WaitUntil(() => gate.Waiting == 1, "the blocker runs");

        Assert.That(wq.QueueWork(queued), Is.True);
        Assert.That(wq.QueueWork(queued), Is.False);
        Assert.That(Sys.SystemWq.QueueWork(queued), Is.False, "PENDING is per work, whatever the workqueue");

        gate.Open();
        WaitUntil(() => queued.Runs == 1, "the queued work ran");
        AsTask(wq.FlushWorkqueue);
        Assert.That(queued.Runs, Is.EqualTo(1));
    }

    [Test]
    public void QueueWork_FromItsOwnFunction_IsAcceptedBecausePendingIsClearedBeforeTheCall()
    {
        bool? requeued = null;
        TestWork work = null!;
        work = Work("self_requeue_fn", w =>
        {
            if (w.Runs == 0)
            {
                requeued = Sys.SystemUnboundWq.QueueWork(w);
            }
        });

        Sys.SystemUnboundWq.QueueWork(work);

        WaitUntil(() => work.Runs == 2, "the work ran twice");
        Assert.That(requeued, Is.True);
    }

    [Test]
    public void InitialWorkers_AreNamedAfterTheirPool()
    {
        string[] names = Sys.Pools().SelectMany(p => p.WorkerTasks()).Select(t => t.Comm).Order().ToArray();

        Assert.That(names, Is.SupersetOf(new[] { "kworker/0:0", "kworker/0:0H", "kworker/1:0", "kworker/1:0H", "kworker/u4:0" }));
        WorkerPool unbound = Sys.Pools().Single(p => p.Cpu < 0 && !p.Highpri);
        Assert.That(unbound.Id, Is.EqualTo(4), "unbound pools are numbered after the 2 per-CPU pools of each CPU");
        Assert.That(unbound.Cpus, Is.EqualTo(new[] { 0, 1 }));
    }

    [Test]
    public void WorkerInfo_WhileTheWorkRuns_NamesWorkqueueFunctionAndDescription()
    {
        Workqueue wq = Sys.AllocWorkqueue("writeback", WqFlags.MemReclaim | WqFlags.Freezable | WqFlags.Unbound, 0);
        var gate = new Gate("gate");
        TestWork work = Work("wb_workfn", _ =>
        {
            Workqueue.SetWorkerDesc("flush-btrfs-1");
            gate.Wait();
        });
        wq.QueueWork(work);
        WaitUntil(() => gate.Waiting == 1, "the work blocks");
        EmuTask worker = FindWorkerRunning(work);

        string? info = worker.WorkerHooks!.WorkerInfo(worker);

        gate.Open();
        Assert.That(info, Is.EqualTo("writeback wb_workfn (flush-btrfs-1)"));
        WaitUntil(() => work.Runs == 1, "the work finished");
        WaitUntil(() => worker.WorkerHooks.WorkerInfo(worker) is null, "the worker forgets the work");
    }

    [Test]
    public void ProcessOneWork_HoldsTheWorkqueueAndWorkPseudoLocksUnderKernelShapedFrames()
    {
        Workqueue wq = Sys.AllocWorkqueue("btrfs-flush_delalloc", WqFlags.Unbound, 0, "\"%s-%s\"\"btrfs\", name");
        var gate = new Gate("gate");
        var work = new TestWork("btrfs_flush_delalloc_helper", _ => gate.Wait());
        wq.QueueWork(work);
        WaitUntil(() => gate.Waiting == 1, "the work blocks");
        EmuTask worker = FindWorkerRunning(work);

        HeldLock[] held = HeldLocks.Snapshot(worker);
        string[] frames = worker.Frames;

        gate.Open();
        Assert.That(held.Select(h => h.Class.Name), Is.EqualTo(new[] { "\"%s-%s\"\"btrfs\", name", "(&work)" }));
        Assert.That(held.Select(h => h.At), Is.All.EqualTo("process_one_work"));
        Assert.That(held.Select(h => h.Read), Is.EqualTo(new[] { true, false }));
        Assert.That(frames[^4..], Is.EqualTo(new[] { "process_one_work", "worker_thread", "kthread", "ret_from_fork" }));
        WaitUntil(() => work.Runs == 1, "the work finished");
        Assert.That(HeldLocks.Count(worker), Is.Zero);
    }

    [Test]
    public void MaxActive2_ThirdItemWaitsUntilOneFinishes()
    {
        Workqueue wq = Sys.AllocWorkqueue("max2", WqFlags.Unbound, 2);
        var log = new EventLog();
        var gates = new[] { new Gate("g0"), new Gate("g1"), new Gate("g2") };
        TestWork[] works = Enumerable.Range(0, 3).Select(i => Work($"w{i}", _ =>
        {
            log.Add($"w{i} start");
            gates[i].Wait();
            log.Add($"w{i} end");
        })).ToArray();

        foreach (TestWork w in works)
        {
            wq.QueueWork(w);
        }

        WaitUntil(() => gates[0].Waiting == 1 && gates[1].Waiting == 1, "two items run");
        Assert.That(Workqueue.WorkBusy(works[2]), Is.EqualTo(WorkBusyFlags.Pending), "the third is delayed, not running");
        Assert.That(wq.WorkqueueCongested(0), Is.True);

        gates[1].Open();
        WaitUntil(() => gates[2].Waiting == 1, "the third starts");
        Assert.That(gates[0].Waiting, Is.EqualTo(1), "the first still runs");
        log.AssertBefore("w1 end", "w2 start");

        gates[0].Open();
        gates[2].Open();
        AsTask(wq.FlushWorkqueue);
    }

    [Test]
    public void WorkqueueSetMaxActive_Raised_ActivatesDelayedItems()
    {
        Workqueue wq = Sys.AllocWorkqueue("grow", WqFlags.Unbound, 1);
        var gate = new Gate("gate");
        TestWork[] works = Enumerable.Range(0, 3).Select(i => Work($"w{i}", _ => gate.Wait())).ToArray();
        foreach (TestWork w in works)
        {
            wq.QueueWork(w);
        }

        WaitUntil(() => gate.Waiting == 1, "one item runs");

        wq.WorkqueueSetMaxActive(3);

        WaitUntil(() => gate.Waiting == 3, "all three run");
        Assert.That(wq.MaxActive, Is.EqualTo(3));
        gate.Open();
        AsTask(wq.FlushWorkqueue);
    }

    [Test]
    public void OrderedWorkqueue_RunsItemsOneAtATimeInQueueingOrder()
    {
        Workqueue wq = Sys.AllocOrderedWorkqueue("ordered");
        var log = new EventLog();
        TestWork[] works = Enumerable.Range(0, 5).Select(i => Work($"w{i}", _ =>
        {
            log.Add($"s{i}");
            Sched.Msleep(1);
            log.Add($"e{i}");
        })).ToArray();

        foreach (TestWork w in works)
        {
            wq.QueueWork(w);
        }

        AsTask(wq.FlushWorkqueue);
        Assert.That(log.Events, Is.EqualTo(Enumerable.Range(0, 5).SelectMany(i => new[] { $"s{i}", $"e{i}" })));
        Assert.That(wq.Flags & (WqFlags.Ordered | WqFlags.Unbound), Is.EqualTo(WqFlags.Ordered | WqFlags.Unbound));
    }

    [Test]
    public void WorkqueueSetMaxActive_OnOrderedWorkqueue_WarnsAndKeepsOne()
    {
        Workqueue wq = Sys.AllocOrderedWorkqueue("ordered");

        wq.WorkqueueSetMaxActive(4);

        Assert.That(wq.MaxActive, Is.EqualTo(1));
        Assert.That(Log.Lines, Has.Some.Contains("WARNING: workqueue_set_max_active on ordered workqueue ordered"));
    }

    [Test]
    public void WorkFunctionThrowing_IsReportedAsBugAndTheWorkerCarriesOn()
    {
        TestWork bad = Work("bad_fn", _ => throw new InvalidOperationException("boom"));
        TestWork good = Nop("good_fn");
        long bugs = Klog.BugsReported;

        Sys.SystemUnboundWq.QueueWork(bad);
        AsTask(Sys.SystemUnboundWq.FlushWorkqueue);
        Sys.SystemUnboundWq.QueueWork(good);
        AsTask(Sys.SystemUnboundWq.FlushWorkqueue);

        Assert.That(good.Runs, Is.EqualTo(1));
        Assert.That(Klog.BugsReported, Is.GreaterThan(bugs));
        Assert.That(Log.Lines, Has.Some.StartsWith("BUG: workqueue function bad_fn threw InvalidOperationException: boom"));
    }

    [Test]
    public void WorkLeavingALockHeld_IsReportedAsLeakedLock()
    {
        var mutex = new KMutex("&leaky->mutex");
        TestWork leaky = Work("leaky_fn", _ => mutex.Lock());

        Sys.SystemUnboundWq.QueueWork(leaky);
        AsTask(Sys.SystemUnboundWq.FlushWorkqueue);

        Assert.That(Log.Lines, Has.Some.StartsWith("BUG: workqueue leaked lock or atomic: kworker/u4:"));
        Assert.That(Log.Lines, Has.Some.EqualTo("     last function: leaky_fn"));
        Assert.That(Log.Lines, Has.Some.Contains("(&leaky->mutex)"));
    }

    [Test]
    public void ShowWorkqueueState_ListsInFlightPendingAndDelayedItemsOfBusyWorkqueues()
    {
        Workqueue wq = Sys.AllocWorkqueue("busy_wq", WqFlags.Unbound, 1);
        var gate = new Gate("gate");
        TestWork running = Work("running_fn", _ => gate.Wait());
        wq.QueueWork(running);
        WaitUntil(() => gate.Waiting == 1, "the first item runs");
        wq.QueueWork(Nop("delayed_fn"));

        Sys.ShowWorkqueueState();

        gate.Open();
        string[] lines = Log.Lines;
        Assert.That(lines, Has.Some.EqualTo("Showing busy workqueues and worker pools:"));
        Assert.That(lines, Has.Some.EqualTo("workqueue busy_wq: flags=0x2"));
        Assert.That(lines, Has.Some.Matches(@"^  pwq 4: cpus=0,1 flags=0x[0-9a-f]+ nice=0 active=1/1$"));
        Assert.That(lines, Has.Some.EqualTo($"    in-flight: {running.LastTask!.Pid}:running_fn"));
        Assert.That(lines, Has.Some.EqualTo("    delayed: delayed_fn"));
        Assert.That(lines, Has.None.Contains("workqueue events"), "idle workqueues are not listed");
    }

    [Test]
    public void QueueWork_OnAnotherSystemsWorkqueue_Throws()
    {
        TestWork work = Nop("nop_fn");
        Sys.SystemWq.QueueWork(work);
        AsTask(() => Workqueue.FlushWork(work));
        using var other = new WorkqueueSystem(CreateLayout(), CreateConfig());

        Assert.That(() => other.SystemWq.QueueWork(work), Throws.InvalidOperationException);
        Assert.That(work.Pending, Is.False, "a refused work is not left pending");
    }

    [Test]
    public void QueueWork_FromSeveralTasksAtOnce_RunsEveryItemOnceAndNeverMoreThanMaxActive()
    {
        // Queuers and workers all contend on the pool lock; its exclusion is what keeps nr_active and the
        // worklist exact.
        const int Queuers = 3;
        const int ItemsEach = 3000;
        const int MaxActive = 2;
        Workqueue wq = Sys.AllocWorkqueue("contended", WqFlags.Unbound, MaxActive);
        int running = 0;
        int maxRunning = 0;
        TestWork[][] items = Enumerable.Range(0, Queuers).Select(q => Enumerable.Range(0, ItemsEach).Select(i => Work($"item_{q}_{i}", _ =>
        {
            int now = Interlocked.Increment(ref running);
            int seen;
            while (now > (seen = Volatile.Read(ref maxRunning)) && Interlocked.CompareExchange(ref maxRunning, now, seen) != seen)
            {
            }

            Interlocked.Decrement(ref running);
        })).ToArray()).ToArray();

        EmuTask[] queuers = items.Select((batch, q) => EmuTask.Run($"queuer/{q}", () =>
        {
            foreach (TestWork w in batch)
            {
                Assert.That(wq.QueueWork(w), Is.True);
            }
        })).ToArray();
        foreach (EmuTask q in queuers)
        {
            JoinOk(q);
        }

        AsTask(wq.FlushWorkqueue);
        Assert.That(items.SelectMany(b => b).Count(w => w.Runs != 1), Is.Zero, "items that did not run exactly once");
        Assert.That(maxRunning, Is.InRange(1, MaxActive));
    }

    // The worker whose WorkerInfo names the work's function.
    private EmuTask FindWorkerRunning(WorkStruct work) =>
        Sys.Pools().SelectMany(p => p.WorkerTasks())
            .Single(t => t.WorkerHooks?.WorkerInfo(t)?.Split(' ')[1] == work.FuncName);
}
