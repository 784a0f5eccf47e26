// kernel/sched/core.c behaviour: schedule(), try_to_wake_up(), schedule_timeout(), __schedule_bug(), and the
// hooks schedule() calls (workqueue concurrency management, sleep observer).
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class ScheduleTests : KernelTestBase
{
    [Test]
    public void WakeUpProcess_BetweenSetStateAndSchedule_IsNotLost()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        EmuTask task = self.Task;

        Sched.SetCurrentState(TaskState.Uninterruptible);
        Assert.That(Sched.WakeUpProcess(task), Is.True);
        Sched.Schedule();

        Assert.That(task.State, Is.EqualTo(TaskState.Running));
        Assert.That(task.Nvcsw, Is.Zero, "schedule() after the wake-up must not sleep");
    }

    [Test]
    public void Schedule_WhenRunning_ReturnsWithoutSleeping()
    {
        using AdoptedTask self = EmuTask.Adopt("test");

        Sched.Schedule();

        Assert.That(self.Task.Nvcsw, Is.Zero);
    }

    [Test]
    public void Schedule_SleepsUntilWokenAndCountsOneVoluntarySwitch()
    {
        var sleeper = EmuTask.Run("sleeper", static () =>
        {
            Sched.SetCurrentState(TaskState.Uninterruptible);
            Sched.Schedule();
        });

        WaitUntilSleeping(sleeper);
        Assert.That(sleeper.State, Is.EqualTo(TaskState.Uninterruptible));
        Assert.That(Sched.WakeUpProcess(sleeper), Is.True);
        JoinOk(sleeper);

        Assert.That(sleeper.Nvcsw, Is.EqualTo(1));
        Assert.That(sleeper.State, Is.EqualTo(TaskState.Dead));
    }

    [Test]
    public void TryToWakeUp_StateNotInMask_DoesNotWake()
    {
        var sleeper = EmuTask.Run("sleeper", static () =>
        {
            Sched.SetCurrentState(TaskState.Uninterruptible);
            Sched.Schedule();
        });
        WaitUntilSleeping(sleeper);

        Assert.That(Sched.TryToWakeUp(sleeper, TaskState.Interruptible), Is.False);
        Assert.That(sleeper.State, Is.EqualTo(TaskState.Uninterruptible));

        Assert.That(Sched.WakeUpProcess(sleeper), Is.True);
        JoinOk(sleeper);
    }

    [Test]
    public void WakeUpProcess_IdleTask_Wakes()
    {
        var sleeper = EmuTask.Run("idle", static () =>
        {
            Sched.SetCurrentState(TaskState.Idle);
            Sched.Schedule();
        });
        WaitUntilSleeping(sleeper);

        Assert.That(sleeper.State, Is.EqualTo(TaskState.Idle));
        Assert.That(Sched.WakeUpProcess(sleeper), Is.True);
        JoinOk(sleeper);
    }

    [Test]
    public void ScheduleTimeout_WithoutWaker_ReturnsZeroAndLeavesTaskRunning()
    {
        using AdoptedTask self = EmuTask.Adopt("test");

        long left = Sched.ScheduleTimeoutUninterruptible(5);

        Assert.That(left, Is.Zero);
        Assert.That(self.Task.State, Is.EqualTo(TaskState.Running));
        Assert.That(self.Task.Nvcsw, Is.EqualTo(1));
    }

    [Test]
    public void ScheduleTimeout_WokenEarly_ReturnsTimeLeft()
    {
        long left = -1;
        var sleeper = EmuTask.Run("sleeper", () => left = Sched.ScheduleTimeoutUninterruptible(600_000));
        WaitUntilSleeping(sleeper);

        Sched.WakeUpProcess(sleeper);
        JoinOk(sleeper);

        Assert.That(left, Is.GreaterThan(0));
    }

    [Test]
    public void Msleep_SleepsThroughSchedule()
    {
        using AdoptedTask self = EmuTask.Adopt("test");

        Sched.Msleep(1);

        Assert.That(self.Task.Nvcsw, Is.GreaterThanOrEqualTo(1));
        Assert.That(self.Task.State, Is.EqualTo(TaskState.Running));
    }

    [Test]
    public void Schedule_InIrqContext_ReportsSchedulingWhileAtomicAndReturns()
    {
        using AdoptedTask self = EmuTask.Adopt("irq-test");
        EmuTask task = self.Task;
        long bugsBefore = Klog.BugsReported;

        using (task.EnterIrq())
        {
            using KFrame frame = KFunc.Enter("end_bio_extent_writepage");
            Sched.SetCurrentState(TaskState.Uninterruptible);
            Sched.Schedule();
        }

        string[] lines = Log.Lines;
        Assert.That(lines[0], Is.EqualTo($"BUG: scheduling while atomic: irq-test/{task.Pid}/0x00010000"));
        int trace = Array.IndexOf(lines, "Call Trace:");
        Assert.That(trace, Is.GreaterThan(0));
        Assert.That(lines[(trace + 1)..], Is.EqualTo(new[] { " schedule", " end_bio_extent_writepage" }));
        Assert.That(Klog.BugsReported, Is.EqualTo(bugsBefore + 1));
        Assert.That(task.State, Is.EqualTo(TaskState.Running));
        Assert.That(task.Nvcsw, Is.Zero);
        Assert.That(task.InAtomic, Is.False);
    }

    [Test]
    public void Schedule_WqWorker_CallsSleepingBeforeAndRunningAfterTheSleep()
    {
        var hooks = new RecordingWorkerHooks();
        var worker = new EmuTask("kworker/u4:1", static () =>
        {
            Sched.SetCurrentState(TaskState.Uninterruptible);
            Sched.Schedule();
        }, parentPid: 2)
        {
            Flags = TaskFlags.WqWorker | TaskFlags.Kthread,
            WorkerHooks = hooks,
        };
        worker.Start();

        WaitUntilSleeping(worker);
        Assert.That(hooks.Events, Is.EqualTo(new[] { "sleeping kworker/u4:1" }));

        Sched.WakeUpProcess(worker);
        JoinOk(worker);
        Assert.That(hooks.Events, Is.EqualTo(new[] { "sleeping kworker/u4:1", "running kworker/u4:1" }));
    }

    [Test]
    public void Schedule_NonWorker_DoesNotCallWorkerHooks()
    {
        var hooks = new RecordingWorkerHooks();
        var task = new EmuTask("fdm-stress", static () =>
        {
            Sched.SetCurrentState(TaskState.Uninterruptible);
            Sched.Schedule();
        })
        {
            WorkerHooks = hooks,
        };
        task.Start();
        WaitUntilSleeping(task);
        Sched.WakeUpProcess(task);
        JoinOk(task);

        Assert.That(hooks.Events, Is.Empty);
    }

    [Test]
    public void SleepObserver_SeesWhatTheSleeperWaitsOnAndWhoHoldsIt()
    {
        using AdoptedTask self = EmuTask.Adopt("holder");
        var mutex = new KMutex("&test->observer_mutex");
        var observer = new RecordingSleepObserver();
        Sched.SleepObserver = observer;
        mutex.Lock();

        var waiter = EmuTask.Run("waiter", () =>
        {
            mutex.Lock();
            mutex.Unlock();
        });
        // schedule() counts the switch before it calls the observer, so wait for the observer itself.
        WaitUntil(() => { lock (observer.Started) return observer.Started.Count >= 1; }, "the observer saw the waiter sleep");
        mutex.Unlock();
        JoinOk(waiter);

        (EmuTask task, IWaitResource? on, EmuTask[] holders) = observer.Started[0];
        Assert.That(task, Is.SameAs(waiter));
        Assert.That(on, Is.SameAs(mutex));
        Assert.That(holders, Is.EqualTo(new[] { self.Task }));
        Assert.That(observer.Ended, Is.EqualTo(observer.Started.Count));
    }

    [Test]
    public void SetPointHook_SeesScheduleAndWakePoints()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var points = new List<SchedPoint>();
        Sched.SetPointHook(p =>
        {
            lock (points)
            {
                points.Add(p);
            }
        });

        Sched.SetCurrentState(TaskState.Uninterruptible);
        Sched.WakeUpProcess(self.Task);
        Sched.Schedule();
        Sched.SetPointHook(null);

        Assert.That(points, Is.EqualTo(new[] { SchedPoint.Wake, SchedPoint.Schedule }));
    }

    [Test]
    public void Schedule_OnHostThread_Throws()
    {
        Assert.That(Sched.Schedule, Throws.InvalidOperationException);
    }

    private sealed class RecordingWorkerHooks : IWorkqueueWorkerHooks
    {
        private readonly List<string> _events = new();

        public string[] Events
        {
            get
            {
                lock (_events)
                {
                    return _events.ToArray();
                }
            }
        }

        public void WqWorkerSleeping(EmuTask task) => Add("sleeping " + task.Comm);

        public void WqWorkerRunning(EmuTask task) => Add("running " + task.Comm);

        public string? WorkerInfo(EmuTask task) => null;

        private void Add(string e)
        {
            lock (_events)
            {
                _events.Add(e);
            }
        }
    }

    private sealed class RecordingSleepObserver : ISleepObserver
    {
        private int _ended;

        public List<(EmuTask Task, IWaitResource? On, EmuTask[] Holders)> Started { get; } = new();

        public int Ended => Volatile.Read(ref _ended);

        public void SleepStarted(EmuTask task)
        {
            var holders = new List<EmuTask>();
            task.WaitingOn?.AppendHolders(holders);
            lock (Started)
            {
                Started.Add((task, task.WaitingOn, holders.ToArray()));
            }
        }

        public void SleepEnded(EmuTask task) => Interlocked.Increment(ref _ended);
    }
}
