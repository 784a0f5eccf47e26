// schedule()'s sleep-observer slot holding several observers (Sched.AddSleepObserver / RemoveSleepObserver).
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class SleepObserverTests : KernelTestBase
{
    [Test]
    public void AddSleepObserver_CallsEveryInstalledObserverOnEachSleep()
    {
        var first = new SleepProbe();
        var second = new SleepProbe();
        Sched.AddSleepObserver(first);
        Sched.AddSleepObserver(second);

        EmuTask task = SleepOnce();

        Assert.That((first.StartedBy(task), first.EndedBy(task)), Is.EqualTo((1, 1)));
        Assert.That((second.StartedBy(task), second.EndedBy(task)), Is.EqualTo((1, 1)));
    }

    [Test]
    public void RemoveSleepObserver_LeavesTheOthersInstalled()
    {
        var first = new SleepProbe();
        var second = new SleepProbe();
        var third = new SleepProbe();
        Sched.AddSleepObserver(first);
        Sched.AddSleepObserver(second);
        Sched.AddSleepObserver(third);

        Assert.That(Sched.RemoveSleepObserver(second), Is.True);
        Assert.That(Sched.RemoveSleepObserver(second), Is.False);
        EmuTask task = SleepOnce();

        Assert.That(first.StartedBy(task), Is.EqualTo(1));
        Assert.That(second.StartedBy(task), Is.Zero);
        Assert.That(third.StartedBy(task), Is.EqualTo(1));
        Assert.That(Sched.RemoveSleepObserver(first), Is.True);
        Assert.That(Sched.SleepObserver, Is.SameAs(third));
        Assert.That(Sched.RemoveSleepObserver(third), Is.True);
        Assert.That(Sched.SleepObserver, Is.Null);
    }

    [Test]
    public void AddSleepObserver_KeepsAnObserverSetDirectly()
    {
        var direct = new SleepProbe();
        var added = new SleepProbe();
        Sched.SleepObserver = direct;

        Sched.AddSleepObserver(added);
        EmuTask task = SleepOnce();

        Assert.That(direct.StartedBy(task), Is.EqualTo(1));
        Assert.That(added.StartedBy(task), Is.EqualTo(1));
    }

    private static EmuTask SleepOnce()
    {
        var task = EmuTask.Run("sleeper", () => Sched.ScheduleTimeoutUninterruptible(1));
        JoinOk(task);
        return task;
    }
}
