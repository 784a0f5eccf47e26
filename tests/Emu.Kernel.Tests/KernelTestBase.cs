// Shared fixture plumbing: a fresh kernel log per test, hooks reset afterwards, and condition-based
// handshakes (wait until another task has reached a state) instead of sleeps.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

public abstract class KernelTestBase
{
    private const int HandshakeTimeoutMs = 10_000;

    private IKernelLog? _savedSink;

    protected KernelLog Log { get; private set; } = null!;

    [SetUp]
    public void InstallLog()
    {
        _savedSink = Klog.Sink;
        Log = new KernelLog();
        Klog.Sink = Log;
    }

    [TearDown]
    public void RestoreGlobals()
    {
        Klog.Sink = _savedSink!;
        Sched.SleepObserver = null;
        Sched.SetPointHook(null);
    }

    /// <summary>Spins until <paramref name="condition"/> holds; fails the test if it never does.</summary>
    protected static void WaitUntil(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + HandshakeTimeoutMs;
        var spin = new SpinWait();
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                Assert.Fail($"timed out waiting until {what}");
            }

            spin.SpinOnce();
        }
    }

    /// <summary>Waits until <paramref name="task"/> has gone to sleep in schedule() at least <paramref name="sleeps"/> times and is not running.</summary>
    protected static void WaitUntilSleeping(EmuTask task, long sleeps = 1) =>
        WaitUntil(() => task.Nvcsw >= sleeps && task.State != TaskState.Running, $"{task} sleeps in schedule()");

    /// <summary>Joins a task from the host thread and rethrows its failure.</summary>
    protected static void JoinOk(EmuTask task)
    {
        Assert.That(task.Join(HandshakeTimeoutMs), Is.True, $"{task} did not exit");
        Assert.That(task.Exception, Is.Null, $"{task} failed: {task.Exception}");
    }
}
