// kernel/sched/wait.c behaviour: prepare_to_wait/finish_wait, wake_up with exclusive waiters, wait_event.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class WaitQueueTests : KernelTestBase
{
    private sealed class Flag
    {
        public volatile bool Value;
    }

    [Test]
    public void WaitEvent_ConditionAlreadyTrue_ReturnsWithoutSleeping()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var wq = new WaitQueueHead();
        var flag = new Flag { Value = true };

        Wait.WaitEvent(wq, static f => f.Value, flag);

        Assert.That(self.Task.Nvcsw, Is.Zero);
        Assert.That(wq.Active, Is.False);
    }

    [Test]
    public void WaitEvent_SleepsUntilConditionAndWakeUp()
    {
        var wq = new WaitQueueHead(new NamedWaitResource("ordered extent [0, 4095] of inode 257"));
        var flag = new Flag();
        var waiter = EmuTask.Run("fdm-stress", () => Wait.WaitEvent(wq, static f => f.Value, flag));
        WaitUntilSleeping(waiter);

        Assert.That(waiter.WaitingOn, Is.SameAs(wq.Resource));
        flag.Value = true;
        Wait.WakeUp(wq);
        JoinOk(waiter);

        Assert.That(waiter.WaitingOn, Is.Null);
        Assert.That(wq.Active, Is.False);
    }

    [Test]
    public void WaitEvent_WokenWhileConditionFalse_SleepsAgain()
    {
        var wq = new WaitQueueHead();
        var flag = new Flag();
        var waiter = EmuTask.Run("fdm-stress", () => Wait.WaitEvent(wq, static f => f.Value, flag));
        WaitUntilSleeping(waiter);

        Wait.WakeUp(wq);
        WaitUntilSleeping(waiter, 2);
        Assert.That(waiter.HasExited, Is.False);

        flag.Value = true;
        Wait.WakeUp(wq);
        JoinOk(waiter);
    }

    [Test]
    public void WakeUp_WakesOneExclusiveWaiterAndEveryNonExclusiveOne()
    {
        var wq = new WaitQueueHead();
        EmuTask ex1 = StartSleeper("exclusive-1", wq, exclusive: true);
        WaitUntilSleeping(ex1);
        EmuTask ex2 = StartSleeper("exclusive-2", wq, exclusive: true);
        WaitUntilSleeping(ex2);
        EmuTask shared = StartSleeper("shared", wq, exclusive: false);
        WaitUntilSleeping(shared);

        Wait.WakeUp(wq);

        // try_to_wake_up() runs inside WakeUp, so the states are final when it returns.
        Assert.That(shared.State, Is.EqualTo(TaskState.Running).Or.EqualTo(TaskState.Dead));
        Assert.That(ex1.State, Is.EqualTo(TaskState.Running).Or.EqualTo(TaskState.Dead), "first exclusive waiter (FIFO)");
        Assert.That(ex2.State, Is.EqualTo(TaskState.Uninterruptible));

        Wait.WakeUpAll(wq);
        JoinOk(ex1);
        JoinOk(ex2);
        JoinOk(shared);
    }

    [Test]
    public void WaitEventTimeout_ConditionStaysFalse_ReturnsZero()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var wq = new WaitQueueHead();
        var flag = new Flag();

        long left = Wait.WaitEventTimeout(wq, static f => f.Value, flag, 5);

        Assert.That(left, Is.Zero);
        Assert.That(wq.Active, Is.False);
        Assert.That(self.Task.State, Is.EqualTo(TaskState.Running));
    }

    [Test]
    public void WaitEventTimeout_ConditionMet_ReturnsTimeLeft()
    {
        var wq = new WaitQueueHead();
        var flag = new Flag();
        long left = -1;
        var waiter = EmuTask.Run("fdm-stress", () => left = Wait.WaitEventTimeout(wq, static f => f.Value, flag, 600_000));
        WaitUntilSleeping(waiter);

        flag.Value = true;
        Wait.WakeUpAll(wq);
        JoinOk(waiter);

        Assert.That(left, Is.GreaterThan(0));
    }

    [Test]
    public void PrepareToWait_RecordsTheGivenResourceAndFinishWaitClearsIt()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var wq = new WaitQueueHead();
        var resource = new NamedWaitResource("extent range [0, 4095] of inode 257");

        Wait.PrepareToWait(wq, self.Task.WaitEntry, TaskState.Uninterruptible, resource);
        Assert.That(self.Task.WaitingOn, Is.SameAs(resource));
        Assert.That(self.Task.State, Is.EqualTo(TaskState.Uninterruptible));
        Assert.That(self.Task.WaitEntry.IsQueued, Is.True);

        Wait.FinishWait(wq, self.Task.WaitEntry);
        Assert.That(self.Task.WaitingOn, Is.Null);
        Assert.That(self.Task.State, Is.EqualTo(TaskState.Running));
        Assert.That(self.Task.WaitEntry.IsQueued, Is.False);
    }

    private static EmuTask StartSleeper(string comm, WaitQueueHead wq, bool exclusive) =>
        EmuTask.Run(comm, () =>
        {
            WaitQueueEntry entry = EmuTask.CurrentOrThrow.WaitEntry;
            if (exclusive)
            {
                Wait.PrepareToWaitExclusive(wq, entry, TaskState.Uninterruptible);
            }
            else
            {
                Wait.PrepareToWait(wq, entry, TaskState.Uninterruptible);
            }

            Sched.Schedule();
            Wait.FinishWait(wq, entry);
        });
}
