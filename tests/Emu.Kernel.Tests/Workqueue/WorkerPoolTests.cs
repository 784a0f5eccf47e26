// kernel/workqueue.c (v4.4) pool management: maybe_create_worker / pool_mayday_timeout / rescuer_thread
// (forward progress of WQ_MEM_RECLAIM workqueues when workers cannot be created), idle_worker_timeout
// (reaping), freeze_workqueues_begin / thaw_workqueues (WQ_FREEZABLE), and per-node unbound pwqs.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class WorkerPoolTests : WorkqueueTestBase
{
    protected override WorkqueueConfig CreateConfig() => base.CreateConfig() with { IdleWorkerTimeoutMs = 30 };

    [Test]
    public void Rescuer_WhenWorkerCreationFails_RunsTheMemReclaimWorkqueuesItems()
    {
        Workqueue wq = Sys.AllocWorkqueue("reclaim_wq", WqFlags.Unbound | WqFlags.MemReclaim, 0);
        bool? onRescuer = null;
        TestWork a = Work("a_fn", _ => onRescuer = Workqueue.CurrentIsWorkqueueRescuer());
        TestWork b = Nop("b_fn");
        Sys.FailWorkerCreation = true;

        wq.QueueWork(a);
        wq.QueueWork(b);

        WaitUntil(() => a.Runs == 1 && b.Runs == 1, "the rescuer ran both items");
        Assert.That(a.LastTask, Is.SameAs(wq.Rescuer));
        Assert.That(b.LastTask, Is.SameAs(wq.Rescuer));
        Assert.That(a.LastTask!.Comm, Is.EqualTo("reclaim_wq"));
        Assert.That(onRescuer, Is.True);
        Assert.That(Sys.WorkerCreationFailures, Is.GreaterThan(0));
        Sys.FailWorkerCreation = false;
    }

    [Test]
    public void WithoutMemReclaim_WhenWorkerCreationFails_ItemsStallUntilCreationWorksAgain()
    {
        Workqueue wq = Sys.AllocWorkqueue("plain_wq", WqFlags.Unbound, 0);
        TestWork a = Nop("a_fn");
        Sys.FailWorkerCreation = true;

        wq.QueueWork(a);

        // The only worker became the manager and keeps failing; past MAYDAY_INITIAL_TIMEOUT nobody rescues.
        WaitUntil(() => Sys.WorkerCreationFailures >= 5, "the manager retried several times");
        Assert.That(a.Runs, Is.Zero);
        Assert.That(Workqueue.WorkBusy(a), Is.EqualTo(WorkBusyFlags.Pending));

        Sys.FailWorkerCreation = false;
        WaitUntil(() => a.Runs == 1, "the item ran once a worker could be created");
        Assert.That(a.LastTask!.Comm, Does.StartWith("kworker/u"));
    }

    [Test]
    public void IdleWorkers_BeyondTwo_AreReapedAfterTheIdleTimeout()
    {
        Workqueue wq = Sys.AllocWorkqueue("burst", WqFlags.Unbound, 0);
        var gate = new Gate("gate");
        for (int i = 0; i < 6; i++)
        {
            wq.QueueWork(Work($"w{i}", _ => gate.Wait()));
        }

        WaitUntil(() => gate.Waiting == 6, "six items run at once");
        WorkerPool pool = Sys.Pools().Single(p => p.Cpu < 0 && !p.Highpri);
        int peak = pool.NrWorkersSnapshot;
        EmuTask[] peakTasks = pool.WorkerTasks();
        gate.Open();

        WaitUntil(() => pool.NrWorkersSnapshot == 2 && pool.NrIdleSnapshot == 2, "the pool shrinks to two idle workers");
        Assert.That(peak, Is.GreaterThanOrEqualTo(7), "an unbound pool gives each item a worker and keeps one in reserve");
        WaitUntil(() => peakTasks.Count(t => t.HasExited) == peak - 2, "the reaped workers exited");
    }

    [Test]
    public void Freezable_WhileFrozen_ItemsWaitAndThawRunsThem()
    {
        Workqueue frozen = Sys.AllocWorkqueue("freezable_wq", WqFlags.Unbound | WqFlags.Freezable, 0);
        TestWork held = Nop("held_fn");
        TestWork free = Nop("free_fn");
        Sys.FreezeWorkqueuesBegin();

        frozen.QueueWork(held);
        Sys.SystemUnboundWq.QueueWork(free);

        WaitUntil(() => free.Runs == 1, "a non-freezable workqueue keeps running");
        Assert.That(held.Runs, Is.Zero);
        Assert.That(Workqueue.WorkBusy(held), Is.EqualTo(WorkBusyFlags.Pending));
        Assert.That(Sys.FreezeWorkqueuesBusy(), Is.False, "nothing active on freezable workqueues");

        Sys.ThawWorkqueues();
        WaitUntil(() => held.Runs == 1, "thawing runs the held item");
    }

    [Test]
    public void FreezeWorkqueuesBusy_WhileAFreezableItemRuns_IsTrue()
    {
        Workqueue wq = Sys.AllocWorkqueue("freezable_wq", WqFlags.Freezable, 0);
        var gate = new Gate("gate");
        wq.QueueWork(Work("busy_fn", _ => gate.Wait()));
        WaitUntil(() => gate.Waiting == 1, "the item runs");

        Sys.FreezeWorkqueuesBegin();

        Assert.That(Sys.FreezeWorkqueuesBusy(), Is.True, "freezing waits for running items");
        gate.Open();
        WaitUntil(() => !Sys.FreezeWorkqueuesBusy(), "the item finished");
        Sys.ThawWorkqueues();
    }

    [Test]
    public void Dispose_WithAWorkerBlockedForever_ReturnsAndRefusesFurtherQueueing()
    {
        using var sys = new WorkqueueSystem(CreateLayout(), CreateConfig() with { ShutdownTimeoutMs = 100 });
        var gate = new Gate("never");
        TestWork stuck = Work("stuck_fn", _ => gate.Wait());
        sys.SystemUnboundWq.QueueWork(stuck);
        WaitUntil(() => gate.Waiting == 1, "the item blocks");

        sys.Dispose();

        TestWork late = Nop("late_fn");
        sys.SystemWq.QueueWork(late);
        Assert.That(late.Runs, Is.Zero);
        Assert.That(Log.Lines, Has.Some.Contains("queueing after WorkqueueSystem shutdown"));
        gate.Open();
    }
}

[TestFixture]
public sealed class TwoNodeWorkqueueTests : WorkqueueTestBase
{
    protected override CpuLayout CreateLayout() => new([[0], [1]]);

    [Test]
    public void UnboundWorkqueue_HasAPwqPerNode_SoMaxActiveIsPerNode()
    {
        Workqueue wq = Sys.AllocWorkqueue("pernode", WqFlags.Unbound, 1);
        var gate = new Gate("gate");
        TestWork onNode0 = Work("n0_fn", _ => gate.Wait());
        TestWork onNode1 = Work("n1_fn", _ => gate.Wait());

        wq.QueueWorkOn(0, onNode0);
        wq.QueueWorkOn(1, onNode1);

        WaitUntil(() => gate.Waiting == 2, "one item per node runs");
        WorkerPool node0 = Sys.Pools().Single(p => p.Cpu < 0 && !p.Highpri && p.Node == 0);
        WorkerPool node1 = Sys.Pools().Single(p => p.Cpu < 0 && !p.Highpri && p.Node == 1);
        Assert.That(node0.Cpus, Is.EqualTo(new[] { 0 }));
        Assert.That(node0.WorkerTasks(), Does.Contain(onNode0.LastTask));
        Assert.That(node1.WorkerTasks().Select(t => t.Comm), Is.All.StartsWith($"kworker/u{node1.Id}:"));
        gate.Open();
        AsTask(wq.FlushWorkqueue);
    }

    [Test]
    public void OrderedWorkqueue_HasOnePwqForAllNodes()
    {
        Workqueue wq = Sys.AllocOrderedWorkqueue("ordered2");
        var gate = new Gate("gate");
        TestWork first = Work("first_fn", _ => gate.Wait());
        TestWork second = Work("second_fn", _ => gate.Wait());

        wq.QueueWorkOn(0, first);
        wq.QueueWorkOn(1, second);

        WaitUntil(() => gate.Waiting == 1, "the first item runs");
        Assert.That(Workqueue.WorkBusy(second), Is.EqualTo(WorkBusyFlags.Pending), "max_active 1 across both nodes");
        gate.Open();
        AsTask(wq.FlushWorkqueue);
        Assert.That(second.Runs, Is.EqualTo(1));
    }
}
