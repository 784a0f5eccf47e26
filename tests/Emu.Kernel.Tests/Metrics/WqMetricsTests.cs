// The "Emu.Workqueue" meter: what pool_workqueue->stats (v6.3+) and show_workqueue_state() expose, observed
// as dotnet-counters would see it. A frozen freezable workqueue (freeze_workqueues_begin: max_active 0) keeps
// every item queued on delayed_works, so its backlog is exactly what was queued until it is thawed.
using System.Diagnostics.Metrics;
using Emu.Kernel;
using Emu.Testing;
using NUnit.Framework;

namespace Emu.Kernel.Tests.Metrics;

[TestFixture]
public sealed class WqMetricsTests : WorkqueueTestBase
{
    private const string WqName = "wq_metrics_frozen";

    [Test]
    public void Backlog_CountsItemsQueuedOnAFrozenWorkqueue_UntilThawRunsThem()
    {
        using var probe = new MeterProbe(WqMetrics.MeterName);
        Workqueue wq = Sys.AllocWorkqueue(WqName, WqFlags.Freezable, 0);
        var works = Enumerable.Range(0, 5).Select(i => Nop($"frozen_fn{i}")).ToArray();
        Sys.FreezeWorkqueuesBegin();

        foreach (TestWork w in works)
        {
            Assert.That(wq.QueueWork(w), Is.True);
        }

        Assert.That(probe.Observe("emu.wq.backlog", "wq", WqName), Is.EqualTo(5));
        Assert.That(probe.Observe("emu.wq.work_queued", "wq", WqName), Is.EqualTo(5));
        Assert.That(probe.Observe("emu.wq.work_completed", "wq", WqName), Is.Zero);

        Sys.ThawWorkqueues();
        WaitUntil(() => works.All(w => w.Runs == 1), "thawing runs every item");
        WaitUntil(() => probe.Observe("emu.wq.work_completed", "wq", WqName) == 5, "every item is counted as completed");
        Assert.That(probe.Observe("emu.wq.backlog", "wq", WqName), Is.Zero);
        Assert.That(probe.Observe("emu.wq.work_queued", "wq", WqName), Is.EqualTo(5));
    }

    [Test]
    public void WorkersRunning_CountsAPerCpuWorkerBusyInAnItem()
    {
        using var probe = new MeterProbe(WqMetrics.MeterName);
        var started = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();

        // The item spins instead of sleeping: a worker asleep in schedule() leaves nr_running.
        Sys.SystemWq.QueueWorkOn(0, Work("spin_fn", _ =>
        {
            started.Set();
            while (!release.IsSet)
            {
                Thread.SpinWait(100);
            }
        }));
        Assert.That(started.Wait(10_000), Is.True, "the item starts");

        long running = probe.Observe("emu.wq.workers.running", "pool", "percpu");
        long workers = probe.Observe("emu.wq.workers", "pool", "percpu");
        long idle = probe.Observe("emu.wq.workers.idle", "pool", "percpu");
        release.Set();

        Assert.That(running, Is.GreaterThanOrEqualTo(1));
        Assert.That(workers - idle, Is.GreaterThanOrEqualTo(1), "the busy worker is not idle");
        Assert.That(workers, Is.GreaterThanOrEqualTo(2), "one kworker per CPU at least");
    }

    [Test]
    public void EveryInstrument_HasAUnitAndADescription()
    {
        using var probe = new MeterProbe(WqMetrics.MeterName);
        probe.Observe("emu.wq.backlog", "wq", "events");

        Instrument[] instruments = probe.Instruments;

        Assert.That(instruments.Select(i => i.Name), Is.SupersetOf(new[]
        {
            "emu.wq.work_queued", "emu.wq.work_completed", "emu.wq.backlog", "emu.wq.maydays",
            "emu.wq.workers", "emu.wq.workers.idle", "emu.wq.workers.running",
        }));
        Assert.That(instruments, Has.All.Matches<Instrument>(i => !string.IsNullOrEmpty(i.Unit) && !string.IsNullOrEmpty(i.Description)));
    }
}
