// kernel/hung_task.c (v4.4) behaviour: khungtaskd reports tasks stuck in TASK_UNINTERRUPTIBLE whose switch
// count has not moved for the timeout, in the kernel's format, within hung_task_warnings, and ignores
// TASK_IDLE and TASK_INTERRUPTIBLE sleepers and sleeps shorter than the timeout.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class HungTaskTests : KernelTestBase
{
    private const long TimeoutMs = 250;

    [Test]
    public void Khungtaskd_ReportsAStuckTaskOncePerStuckPeriod()
    {
        using var khungtaskd = new HungTaskDetector(TimeoutMs);
        var never = new Completion("never");
        var task = EmuTask.Run("fdm-stress", () =>
        {
            using KFrame frame = KFunc.Enter("btrfs_wait_ordered_extents");
            never.WaitForCompletion();
        });
        var hung = new List<(EmuTask Task, string Text)>();
        khungtaskd.TaskHung += (t, text) =>
        {
            lock (hung)
            {
                hung.Add((t, text));
            }
        };
        WaitUntilSleeping(task);
        khungtaskd.Start();

        WaitUntil(() => ReportsFor(khungtaskd, task) == 1, "khungtaskd reports the task");
        long scans = khungtaskd.ScanCount;
        WaitUntil(() => khungtaskd.ScanCount >= scans + 3, "three more scans");
        int reportsWhileStuck = ReportsFor(khungtaskd, task);
        never.Complete();
        JoinOk(task);
        khungtaskd.Stop();

        Assert.That(reportsWhileStuck, Is.EqualTo(1));
        HungTaskReport report = khungtaskd.Reports.Single(r => r.Task == task);
        Assert.That(report.Lines.Take(6), Is.EqualTo(new[]
        {
            $"INFO: task fdm-stress:{task.Pid} blocked for more than 0.25 seconds.",
            $"      {Klog.PrintTainted()} 4.4.0-emu #1",
            "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
            $"fdm-stress      D     0 {task.Pid,5} {task.ParentPid,6} 0x00000000",
            "Call Trace:",
            " schedule",
        }));
        Assert.That(report.Frames, Is.EqualTo(new[]
        {
            "schedule", "schedule_timeout", "__wait_for_common", "wait_for_completion", "btrfs_wait_ordered_extents",
        }));
        Assert.That(report.Lines[^1], Is.EqualTo($"no locks held by fdm-stress/{task.Pid}."));
        Assert.That(report.Workqueue, Is.Null);
        Assert.That(report.BlockedForMs, Is.GreaterThanOrEqualTo(TimeoutMs));
        lock (hung)
        {
            Assert.That(hung.Where(h => h.Task == task).Select(h => h.Text), Is.EqualTo(new[] { report.Text }));
        }
    }

    [Test]
    public void Khungtaskd_ReportsTheWorkqueueLineOfAWorkerAndItsHeldLocks()
    {
        using var khungtaskd = new HungTaskDetector(TimeoutMs);
        var hooks = new FakeWorkerHooks("btrfs-flush_delalloc btrfs_flush_delalloc_helper");
        Page page = new(mapping: null, inodeNumber: 257, index: 2, address: 0);
        var wqMap = new NamedWaitResource("btrfs-flush_delalloc");
        LockClass wqClass = LockClass.Get("\"test-flush_delalloc\"");
        Filemap.LockPage(page);
        var worker = new EmuTask("kworker/u4:1", () =>
        {
            EmuTask self = EmuTask.CurrentOrThrow;
            using KFrame kthread = KFunc.Enter("kthread");
            using KFrame workerThread = KFunc.Enter("worker_thread");
            using KFrame processOneWork = KFunc.Enter("process_one_work");
            HeldLocks.Acquired(self, wqMap, wqClass);
            using KFrame helper = KFunc.Enter("btrfs_flush_delalloc_helper");
            using KFrame writepages = KFunc.Enter("extent_write_cache_pages");
            Filemap.LockPage(page);
            Filemap.UnlockPage(page);
            HeldLocks.Released(self, wqMap);
        }, parentPid: 2)
        {
            Flags = TaskFlags.Kthread | TaskFlags.WqWorker,
            WorkerHooks = hooks,
        };
        worker.Start();
        khungtaskd.Start();

        WaitUntil(() => ReportsFor(khungtaskd, worker) == 1, "khungtaskd reports the worker");
        Filemap.UnlockPage(page);
        JoinOk(worker);
        khungtaskd.Stop();

        HungTaskReport report = khungtaskd.Reports.Single(r => r.Task == worker);
        Assert.That(report.Lines.Skip(3), Is.EqualTo(new[]
        {
            $"kworker/u4:1    D     0 {worker.Pid,5}      2 0x00000000",
            "Workqueue: btrfs-flush_delalloc btrfs_flush_delalloc_helper",
            "Call Trace:",
            " schedule",
            " schedule_timeout",
            " io_schedule_timeout",
            " bit_wait_io",
            " __wait_on_bit_lock",
            " __lock_page",
            " lock_page",
            " extent_write_cache_pages",
            " btrfs_flush_delalloc_helper",
            " process_one_work",
            " worker_thread",
            " kthread",
            $"1 lock held by kworker/u4:1/{worker.Pid}:",
            " #0:  (\"test-flush_delalloc\"){+.+...}, at: process_one_work",
        }));
        Assert.That(report.Workqueue, Is.EqualTo("btrfs-flush_delalloc btrfs_flush_delalloc_helper"));
        Assert.That(report.Locks.Select(l => l.Lock), Is.EqualTo(new IWaitResource[] { wqMap }));
    }

    [Test]
    public void Khungtaskd_StopsReportingWhenHungTaskWarningsRunOut()
    {
        using var khungtaskd = new HungTaskDetector(TimeoutMs) { HungTaskWarnings = 1 };
        var never = new Completion("never");
        EmuTask first = EmuTask.Run("fdm-stress", never.WaitForCompletion);
        EmuTask second = EmuTask.Run("fdm-stress", never.WaitForCompletion);
        WaitUntilSleeping(first);
        WaitUntilSleeping(second);
        khungtaskd.Start();

        WaitUntil(() => khungtaskd.ReportsEmitted == 1, "the first report");
        long scans = khungtaskd.ScanCount;
        WaitUntil(() => khungtaskd.ScanCount >= scans + 3, "three more scans");
        long emitted = khungtaskd.ReportsEmitted;
        never.CompleteAll();
        JoinOk(first);
        JoinOk(second);
        khungtaskd.Stop();

        Assert.That(emitted, Is.EqualTo(1));
        Assert.That(khungtaskd.HungTaskWarnings, Is.Zero);
        Assert.That(Log.Lines.Count(l => l.StartsWith("INFO: task ", StringComparison.Ordinal)), Is.EqualTo(1));
    }

    [Test]
    public void Khungtaskd_IgnoresIdleAndInterruptibleSleepers()
    {
        using var khungtaskd = new HungTaskDetector(TimeoutMs);
        var wq = new WaitQueueHead();
        var release = new StrongBox<bool>();
        EmuTask idle = EmuTask.Run("kworker/u4:0", () => Wait.WaitEvent(wq, static r => Volatile.Read(ref r.Value), release, TaskState.Idle));
        EmuTask interruptible = EmuTask.Run("fdm-stress", () => Wait.WaitEvent(wq, static r => Volatile.Read(ref r.Value), release, TaskState.Interruptible));
        EmuTask uninterruptible = EmuTask.Run("fdm-stress", () => Wait.WaitEvent(wq, static r => Volatile.Read(ref r.Value), release, TaskState.Uninterruptible));
        WaitUntilSleeping(idle);
        WaitUntilSleeping(interruptible);
        WaitUntilSleeping(uninterruptible);
        khungtaskd.Start();

        WaitUntil(() => ReportsFor(khungtaskd, uninterruptible) == 1, "the uninterruptible sleeper is reported");
        long scans = khungtaskd.ScanCount;
        WaitUntil(() => khungtaskd.ScanCount >= scans + 2, "two more scans");
        Volatile.Write(ref release.Value, true);
        Wait.WakeUpAll(wq);
        JoinOk(idle);
        JoinOk(interruptible);
        JoinOk(uninterruptible);
        khungtaskd.Stop();

        Assert.That(ReportsFor(khungtaskd, idle), Is.Zero);
        Assert.That(ReportsFor(khungtaskd, interruptible), Is.Zero);
    }

    [Test]
    public void Khungtaskd_DoesNotReportSleepsShorterThanTheTimeout()
    {
        using var khungtaskd = new HungTaskDetector(TimeoutMs);
        khungtaskd.Start();
        long scans = khungtaskd.ScanCount;
        var sleeper = EmuTask.Run("fdm-stress", () =>
        {
            while (khungtaskd.ScanCount < scans + 3)
            {
                Sched.ScheduleTimeoutUninterruptible(TimeoutMs / 3);
            }
        });

        JoinOk(sleeper);
        khungtaskd.Stop();

        Assert.That(sleeper.Nvcsw, Is.GreaterThanOrEqualTo(3));
        Assert.That(ReportsFor(khungtaskd, sleeper), Is.Zero);
    }

    [Test]
    public void CheckIntervalShorterThanTheTimeout_ReportsOnlySleepsLongerThanTheTimeout()
    {
        using var khungtaskd = new HungTaskDetector(hungTaskTimeoutMs: 600) { HungTaskCheckIntervalMs = 40 };
        var never = new Completion("never");
        khungtaskd.Start();
        EmuTask shortSleeper = EmuTask.Run("fdm-stress", () => Sched.ScheduleTimeoutUninterruptible(200));
        EmuTask stuck = EmuTask.Run("fdm-stress", never.WaitForCompletion);

        JoinOk(shortSleeper);
        WaitUntil(() => ReportsFor(khungtaskd, stuck) == 1, "the stuck task is reported");
        never.Complete();
        JoinOk(stuck);
        khungtaskd.Stop();

        Assert.That(ReportsFor(khungtaskd, shortSleeper), Is.Zero);
        Assert.That(khungtaskd.Reports.Single(r => r.Task == stuck).BlockedForMs, Is.GreaterThanOrEqualTo(600));
        Assert.That(khungtaskd.Reports.Single(r => r.Task == stuck).Lines[0], Does.EndWith("blocked for more than 0.6 seconds."));
    }

    [Test]
    public void HungTaskTimeoutMs_Set_WakesKhungtaskdSoTheNewTimeoutAppliesAtOnce()
    {
        using var khungtaskd = new HungTaskDetector(hungTaskTimeoutMs: 600_000);
        var never = new Completion("never");
        EmuTask stuck = EmuTask.Run("fdm-stress", never.WaitForCompletion);
        WaitUntilSleeping(stuck);
        khungtaskd.Start();
        WaitUntil(() => khungtaskd.Task!.Nvcsw >= 1, "khungtaskd sleeps its first interval");

        khungtaskd.HungTaskTimeoutMs = 1000;

        WaitUntil(() => ReportsFor(khungtaskd, stuck) == 1, "the stuck task is reported under the new timeout");
        never.Complete();
        JoinOk(stuck);
        khungtaskd.Stop();
        Assert.That(khungtaskd.Reports.Single(r => r.Task == stuck).Lines[0], Does.EndWith("blocked for more than 1 seconds."));
    }

    [Test]
    public void HungTaskPanic_RaisesPanickedAfterTheFirstReportAndStopsReporting()
    {
        using var khungtaskd = new HungTaskDetector(TimeoutMs) { HungTaskPanic = true };
        string? panic = null;
        khungtaskd.Panicked += message => Volatile.Write(ref panic, message);
        var never = new Completion("never");
        EmuTask first = EmuTask.Run("fdm-stress", never.WaitForCompletion);
        EmuTask second = EmuTask.Run("fdm-stress", never.WaitForCompletion);
        WaitUntilSleeping(first);
        WaitUntilSleeping(second);
        khungtaskd.Start();

        WaitUntil(() => khungtaskd.PanicTriggered, "khungtaskd panics");
        long scans = khungtaskd.ScanCount;
        WaitUntil(() => khungtaskd.ScanCount >= scans + 2, "two more scans");
        never.CompleteAll();
        JoinOk(first);
        JoinOk(second);
        khungtaskd.Stop();

        Assert.That(Volatile.Read(ref panic), Is.EqualTo("hung_task: blocked tasks"));
        Assert.That(khungtaskd.ReportsEmitted, Is.EqualTo(1));
        Assert.That(Log.Lines, Does.Contain("Kernel panic - not syncing: hung_task: blocked tasks"));
    }

    [Test]
    public void Stop_EndsKhungtaskd()
    {
        var khungtaskd = new HungTaskDetector();
        khungtaskd.Start();
        EmuTask task = khungtaskd.Task!;
        Assert.That(task.Comm, Is.EqualTo("khungtaskd"));
        Assert.That(task.Flags & TaskFlags.Kthread, Is.EqualTo(TaskFlags.Kthread));
        WaitUntilSleeping(task);
        Assert.That(task.State, Is.EqualTo(TaskState.Interruptible));

        khungtaskd.Stop();

        Assert.That(task.HasExited, Is.True);
        Assert.That(khungtaskd.Task, Is.Null);
        Assert.That(TaskList.TryFind(task.Pid, out _), Is.False);
        khungtaskd.Stop();
    }

    private static int ReportsFor(HungTaskDetector khungtaskd, EmuTask task) =>
        khungtaskd.Reports.Count(r => r.Task == task);

    private sealed class StrongBox<T>
    {
        public T Value = default!;
    }

    private sealed class FakeWorkerHooks(string info) : IWorkqueueWorkerHooks
    {
        public void WqWorkerSleeping(EmuTask task)
        {
        }

        public void WqWorkerRunning(EmuTask task)
        {
        }

        public string? WorkerInfo(EmuTask task) => info;
    }
}
