// The "Emu.Sched" meter: tasks in TASK_UNINTERRUPTIBLE are counted while they sleep, and each hung-task
// report of khungtaskd (kernel/hung_task.c) adds one to the report count.
using Emu.Kernel;
using Emu.Testing;
using NUnit.Framework;

namespace Emu.Kernel.Tests.Metrics;

[TestFixture]
public sealed class SchedMetricsTests : KernelTestBase
{
    [Test]
    public void UninterruptibleSleeper_IsCounted_AndItsHungTaskReportToo()
    {
        using var probe = new MeterProbe(SchedMetrics.MeterName);
        using var khungtaskd = new HungTaskDetector(100);
        long reportsBefore = probe.Observe("emu.sched.hung_tasks", "", "");
        var never = new Completion("metrics_never");
        EmuTask task = EmuTask.Run("fdm-stress", never.WaitForCompletion);
        WaitUntilSleeping(task);

        long uninterruptible = probe.Observe("emu.sched.tasks", "state", "uninterruptible");
        khungtaskd.Start();
        WaitUntil(() => khungtaskd.ReportsEmitted >= 1, "khungtaskd reports the sleeper");
        long reportsAfter = probe.Observe("emu.sched.hung_tasks", "", "");
        never.Complete();
        JoinOk(task);
        khungtaskd.Stop();

        Assert.That(uninterruptible, Is.GreaterThanOrEqualTo(1));
        Assert.That(reportsAfter, Is.GreaterThanOrEqualTo(reportsBefore + 1));
    }
}
