// task_struct / kthread behaviour: identity, lifecycle, exit, kthread_stop, adoption, the task list, pinning.
using Emu.Interop;
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class TaskTests : KernelTestBase
{
    [Test]
    public void Current_InsideTaskBody_IsTheTask()
    {
        EmuTask? seen = null;
        var task = EmuTask.Run("fdm-stress", () => seen = EmuTask.Current);
        JoinOk(task);

        Assert.That(seen, Is.SameAs(task));
        Assert.That(EmuTask.Current, Is.Null);
    }

    [Test]
    public void CurrentOrThrow_OnHostThread_Throws()
    {
        Assert.That(() => EmuTask.CurrentOrThrow, Throws.InvalidOperationException);
    }

    [Test]
    public void NewTasks_GetIncreasingPidsAndTheCreatorAsParent()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var a = new EmuTask("fdm-stress", static () => { });
        var b = new EmuTask("fdm-stress", static () => { });
        var kworker = new EmuTask("kworker/u4:1", static () => { }, parentPid: 2);

        Assert.That(b.Pid, Is.GreaterThan(a.Pid));
        Assert.That(a.Pid, Is.GreaterThan(self.Task.Pid));
        Assert.That(a.ParentPid, Is.EqualTo(self.Task.Pid));
        Assert.That(kworker.ParentPid, Is.EqualTo(2));
    }

    [Test]
    public void SetNextPid_NextTaskGetsThatPid()
    {
        EmuTask.SetNextPid(700_000);
        var task = new EmuTask("fdm-stress", static () => { });

        Assert.That(task.Pid, Is.EqualTo(700_000));
    }

    [Test]
    public void Comm_LongerThanTaskCommLen_IsTruncatedTo15Characters()
    {
        var task = new EmuTask("btrfs-endio-write-helper", static () => { });

        Assert.That(task.Comm, Is.EqualTo("btrfs-endio-wri"));
    }

    [Test]
    public void UnhandledException_IsRecordedReportedAndDoesNotCrash()
    {
        var boom = new InvalidOperationException("boom");
        var task = EmuTask.Run("fdm-stress", () => throw boom);

        Assert.That(task.Join(10_000), Is.True);
        Assert.That(task.Exception, Is.SameAs(boom));
        Assert.That(task.HasExited, Is.True);
        Assert.That(task.State, Is.EqualTo(TaskState.Dead));
        Assert.That(Log.Lines, Does.Contain($"BUG: unhandled exception in task fdm-stress/{task.Pid}: InvalidOperationException: boom"));
    }

    [Test]
    public void TaskList_HoldsLiveTasksOnly()
    {
        var release = new Completion("release");
        var task = EmuTask.Run("fdm-stress", () => release.WaitForCompletion());
        WaitUntilSleeping(task);

        Assert.That(TaskList.TryFind(task.Pid, out EmuTask? found), Is.True);
        Assert.That(found, Is.SameAs(task));
        Assert.That(TaskList.Snapshot(), Does.Contain(task));

        release.Complete();
        JoinOk(task);
        Assert.That(TaskList.TryFind(task.Pid, out _), Is.False);
    }

    [Test]
    public void Join_FromEmulatedTask_SleepsOnTheExitCompletion()
    {
        var release = new Completion("release");
        var target = EmuTask.Run("target", () => release.WaitForCompletion());
        var joiner = EmuTask.Run("joiner", () => target.Join());
        WaitUntilSleeping(joiner);

        Assert.That(joiner.WaitingOn, Is.Not.Null);
        Assert.That(joiner.WaitingOn!.Describe(), Is.EqualTo("completion vfork_done"));
        var holders = new List<EmuTask>();
        joiner.WaitingOn.AppendHolders(holders);
        Assert.That(holders, Is.EqualTo(new[] { target }));

        release.Complete();
        JoinOk(joiner);
        Assert.That(target.HasExited, Is.True);
    }

    [Test]
    public void KthreadStop_WakesTheThreadAndWaitsForItToReturn()
    {
        int loops = 0;
        var kthread = EmuTask.Run("khungtaskd", () =>
        {
            EmuTask self = EmuTask.CurrentOrThrow;
            while (!self.KthreadShouldStop)
            {
                loops++;
                Sched.SetCurrentState(TaskState.Interruptible);
                if (!self.KthreadShouldStop)
                {
                    Sched.Schedule();
                }

                Sched.SetCurrentState(TaskState.Running);
            }
        });
        WaitUntilSleeping(kthread);

        kthread.KthreadStop();

        Assert.That(kthread.HasExited, Is.True);
        Assert.That(loops, Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public void Adopt_MakesTheHostThreadATaskUntilDisposed()
    {
        EmuTask adopted;
        using (AdoptedTask self = EmuTask.Adopt("emu"))
        {
            adopted = self.Task;
            Assert.That(EmuTask.Current, Is.SameAs(adopted));
            Assert.That(adopted.IsAdopted, Is.True);
            Assert.That(TaskList.TryFind(adopted.Pid, out _), Is.True);
            Assert.That(() => EmuTask.Adopt("again"), Throws.InvalidOperationException);
        }

        Assert.That(EmuTask.Current, Is.Null);
        Assert.That(adopted.State, Is.EqualTo(TaskState.Dead));
        Assert.That(TaskList.TryFind(adopted.Pid, out _), Is.False);
    }

    [Test]
    public void Exit_WithLockHeld_ReportsLocksStillHeld()
    {
        var mutex = new KMutex("&test->leaked_mutex");
        long bugsBefore = Klog.BugsReported;
        var task = EmuTask.Run("fdm-stress", () =>
        {
            using KFrame frame = KFunc.Enter("leaky_function");
            mutex.Lock();
        });
        JoinOk(task);

        Assert.That(Log.Lines, Does.Contain($"BUG: fdm-stress/{task.Pid} still has locks held!"));
        Assert.That(Log.ToString(), Does.Contain($"1 lock held by fdm-stress/{task.Pid}:\n #0:  (&test->leaked_mutex){{+.+...}}, at: leaky_function"));
        Assert.That(Klog.BugsReported, Is.EqualTo(bugsBefore + 1));
    }

    [Test]
    public void AllowedCpus_PinsTheTaskThreadBeforeTheBodyRuns()
    {
        int[]? seen = null;
        var task = new EmuTask("kworker/0:1", () => seen = Affinity.GetCurrentThread()) { AllowedCpus = new[] { 0 } };
        task.Start();

        Assert.That(task.Join(10_000), Is.True);
        if (task.Exception is DllNotFoundException missing)
        {
            Assert.Ignore($"native shim not built (cmake --build artifacts/native): {missing.Message}");
        }

        Assert.That(task.Exception, Is.Null);
        Assert.That(seen, Is.EqualTo(new[] { 0 }));
    }
}
