namespace Emu.Interop.Tests;

/// <summary>Thread pinning; every test pins a thread of its own so the runner's threads stay unpinned.</summary>
public sealed class AffinityTests
{
    [Test]
    public void PinCurrentThread_ThenGetCurrentThread_ReturnsThePinnedCpu()
    {
        int[] allowed = OnNewThread(Affinity.GetCurrentThread);
        int last = allowed[^1];

        (int rc, int[] after) = OnNewThread(() => (Affinity.PinCurrentThread([last]), Affinity.GetCurrentThread()));

        Assert.That(rc, Is.Zero);
        Assert.That(after, Is.EqualTo(new[] { last }));
    }

    [Test]
    public void PinCurrentThread_ToEveryAllowedCpu_RestoresTheFullSet()
    {
        int[] allowed = OnNewThread(Affinity.GetCurrentThread);

        int[] after = OnNewThread(() =>
        {
            Assert.That(Affinity.PinCurrentThread([allowed[0]]), Is.Zero);
            Assert.That(Affinity.PinCurrentThread(allowed), Is.Zero);
            return Affinity.GetCurrentThread();
        });

        Assert.That(after, Is.EqualTo(allowed));
    }

    [Test]
    public void PinCurrentThread_EmptySet_ReturnsMinusEinval()
    {
        int rc = OnNewThread(() => Affinity.PinCurrentThread([]));

        Assert.That(rc, Is.EqualTo(-Errno.EINVAL));
    }

    [Test]
    public void CurrentThreadId_IsTheKernelTidOfTheCallingThread()
    {
        // /proc/thread-self links to PID/task/TID of whichever thread resolves it.
        static (int Tid, string? Link) Both() => (Affinity.CurrentThreadId(), new DirectoryInfo("/proc/thread-self").LinkTarget);

        (int mine, string? myLink) = Both();
        (int other, string? otherLink) = OnNewThread(Both);

        Assert.That(myLink, Is.EqualTo($"{Environment.ProcessId}/task/{mine}"));
        Assert.That(otherLink, Is.EqualTo($"{Environment.ProcessId}/task/{other}"));
        Assert.That(other, Is.Not.EqualTo(mine));
    }

    private static T OnNewThread<T>(Func<T> body)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = body();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
            throw failure;
        return result;
    }
}
