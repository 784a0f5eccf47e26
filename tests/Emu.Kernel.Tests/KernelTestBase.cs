// Shared fixture plumbing: a fresh kernel log per test, hooks reset afterwards, and condition-based
// handshakes (wait until another task has reached a state) instead of sleeps.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

public abstract class KernelTestBase
{
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

    /// <summary>Waits until <paramref name="task"/> has gone to sleep in schedule() at least <paramref name="sleeps"/> times and is not running.</summary>
    protected static void WaitUntilSleeping(EmuTask task, long sleeps = 1) =>
        WaitUntil(() => task.Nvcsw >= sleeps && task.State != TaskState.Running, $"{task} sleeps in schedule()");

}
