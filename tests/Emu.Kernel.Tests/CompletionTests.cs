// kernel/sched/completion.c behaviour: complete, complete_all, wait_for_completion(_timeout), try_wait.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class CompletionTests : KernelTestBase
{
    [Test]
    public void WaitForCompletion_AfterComplete_ReturnsAtOnceAndConsumesTheEvent()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var done = new Completion("&ordered->completion");
        done.Complete();

        done.WaitForCompletion();

        Assert.That(self.Task.Nvcsw, Is.Zero);
        Assert.That(done.CompletionDone, Is.False);
        Assert.That(done.TryWaitForCompletion(), Is.False);
    }

    [Test]
    public void WaitForCompletion_SleepsUntilCompleteWithAKernelShapedTrace()
    {
        var done = new Completion("&ordered->completion");
        var waiter = EmuTask.Run("fdm-stress", () =>
        {
            using KFrame frame = KFunc.Enter("btrfs_wait_ordered_extents");
            done.WaitForCompletion();
        });

        WaitUntilSleeping(waiter);
        Assert.That(waiter.WaitingOn, Is.SameAs(done));
        Assert.That(waiter.Frames, Is.EqualTo(new[]
        {
            "schedule", "schedule_timeout", "__wait_for_common", "wait_for_completion", "btrfs_wait_ordered_extents",
        }));

        done.Complete();
        JoinOk(waiter);
        Assert.That(waiter.WaitingOn, Is.Null);
    }

    [Test]
    public void Complete_WithTwoWaiters_WakesExactlyOne()
    {
        var done = new Completion("&test->completion");
        var first = EmuTask.Run("waiter-1", () => done.WaitForCompletion());
        WaitUntilSleeping(first);
        var second = EmuTask.Run("waiter-2", () => done.WaitForCompletion());
        WaitUntilSleeping(second);

        done.Complete();
        JoinOk(first);
        Assert.That(second.State, Is.EqualTo(TaskState.Uninterruptible));

        done.Complete();
        JoinOk(second);
    }

    [Test]
    public void CompleteAll_WakesEveryWaiterAndLetsLaterWaitsThrough()
    {
        var done = new Completion("&test->completion");
        var first = EmuTask.Run("waiter-1", () => done.WaitForCompletion());
        var second = EmuTask.Run("waiter-2", () => done.WaitForCompletion());
        WaitUntilSleeping(first);
        WaitUntilSleeping(second);

        done.CompleteAll();
        JoinOk(first);
        JoinOk(second);

        using AdoptedTask self = EmuTask.Adopt("late");
        done.WaitForCompletion();
        Assert.That(done.TryWaitForCompletion(), Is.True);
        Assert.That(self.Task.Nvcsw, Is.Zero);
    }

    [Test]
    public void Reinit_ForgetsPastCompletions()
    {
        var done = new Completion("&test->completion");
        done.CompleteAll();

        done.Reinit();

        Assert.That(done.CompletionDone, Is.False);
        Assert.That(done.TryWaitForCompletion(), Is.False);
    }

    [Test]
    public void WaitForCompletionTimeout_NeverCompleted_ReturnsZero()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var done = new Completion("&test->completion");

        Assert.That(done.WaitForCompletionTimeout(5), Is.Zero);
        Assert.That(self.Task.State, Is.EqualTo(TaskState.Running));
        Assert.That(self.Task.WaitingOn, Is.Null);

        done.Complete();
        Assert.That(done.WaitForCompletionTimeout(5), Is.GreaterThan(0));
    }

    [Test]
    public void ExpectedCompleter_IsTheHolderSeenByTheWaitForGraph()
    {
        var done = new Completion("&ordered->completion");
        var worker = new EmuTask("kworker/u4:1", static () => { }, parentPid: 2);
        done.ExpectedCompleter = worker;

        var holders = new List<EmuTask>();
        done.AppendHolders(holders);

        Assert.That(holders, Is.EqualTo(new[] { worker }));
        Assert.That(done.Describe(), Is.EqualTo("completion &ordered->completion"));
    }
}
