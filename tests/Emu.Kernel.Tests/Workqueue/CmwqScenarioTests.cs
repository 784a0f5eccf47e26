// The "Example Execution Scenarios" of Documentation/workqueue.txt (v4.4; core-api/workqueue.rst today):
// w0, w1, w2 are queued on a bound workqueue on the same CPU; w0 burns CPU for 5 ms, sleeps 10 ms, burns 5 ms
// again; w1 and w2 burn 5 ms then sleep 10 ms. Concurrency management (wq_worker_sleeping, need_more_worker,
// WQ_CPU_INTENSIVE in process_one_work) decides when each starts. Durations are 10x the document's so the
// orderings below hold on a busy two-core machine; the tests compare the order of events, never times, and
// each ordering asserted is either caused by the workqueue or separated by at least 50 ms of margin.
using System.Diagnostics;
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class CmwqScenarioTests : WorkqueueTestBase
{
    private const int BurnMs = 50;
    private const int SleepMs = 100;
    private const int Cpu = 0;

    private EventLog _log = null!;

    [SetUp]
    public void NewLog() => _log = new EventLog();

    [Test]
    public void OriginalWqBehaviour_MaxActive1_RunsTheItemsStrictlyOneAfterAnother()
    {
        Workqueue q0 = Sys.AllocWorkqueue("q0", WqFlags.None, 1);

        RunScenario(q0, q0);

        Assert.That(_log.Events, Is.EqualTo(new[]
        {
            "w0 starts", "w0 sleeps", "w0 wakes", "w0 finishes",
            "w1 starts", "w1 sleeps", "w1 finishes",
            "w2 starts", "w2 sleeps", "w2 finishes",
        }));
    }

    [Test]
    public void Cmwq_MaxActive3_StartsTheNextItemWhenTheRunningOneSleeps()
    {
        Workqueue q0 = Sys.AllocWorkqueue("q0", WqFlags.None, 3);

        RunScenario(q0, q0);

        // w1 starts when w0 sleeps, not when w0 finishes; w2 when w1 sleeps.
        _log.AssertBefore("w0 sleeps", "w1 starts");
        _log.AssertBefore("w1 sleeps", "w2 starts");
        _log.AssertBefore("w1 starts", "w0 wakes");
        _log.AssertBefore("w2 starts", "w0 wakes");
        _log.AssertBefore("w2 starts", "w0 finishes");
    }

    [Test]
    public void Cmwq_MaxActive2_StartsTheThirdItemOnlyWhenOneFinishes()
    {
        Workqueue q0 = Sys.AllocWorkqueue("q0", WqFlags.None, 2);

        RunScenario(q0, q0);

        _log.AssertBefore("w0 sleeps", "w1 starts");
        _log.AssertBefore("w1 starts", "w0 wakes");
        int firstFinish = Math.Min(_log.IndexOf("w0 finishes"), _log.IndexOf("w1 finishes"));
        Assert.That(_log.IndexOf("w2 starts"), Is.GreaterThan(firstFinish), $"w2 waits for an active slot; log: {_log}");
    }

    [Test]
    public void CpuIntensive_W1AndW2OnAnIntensiveWorkqueue_StartTogetherWhenW0Sleeps()
    {
        Workqueue q0 = Sys.AllocWorkqueue("q0", WqFlags.None, 3);
        Workqueue q1 = Sys.AllocWorkqueue("q1", WqFlags.CpuIntensive, 3);

        RunScenario(q0, q1);

        // Starting w1 and w2 still waits for w0 to sleep, but w1 burning does not hold w2 back. (Which of the two
        // logs its start first is up to the OS: w1's worker wakes w2's right after dequeuing w1, and the woken
        // worker may run first.)
        _log.AssertBefore("w0 sleeps", "w1 starts");
        _log.AssertBefore("w0 sleeps", "w2 starts");
        _log.AssertBefore("w2 starts", "w1 sleeps");
        _log.AssertBefore("w2 starts", "w0 wakes");
    }

    // Queues w0 on q0 and w1, w2 on q1, all for the same CPU, and waits for all three.
    private void RunScenario(Workqueue q0, Workqueue q1)
    {
        WarmUpPool();
        TestWork w0 = Work("w0", _ =>
        {
            _log.Add("w0 starts");
            Burn(BurnMs);
            _log.Add("w0 sleeps");
            Sched.Msleep(SleepMs);
            _log.Add("w0 wakes");
            Burn(BurnMs);
            _log.Add("w0 finishes");
        });
        TestWork w1 = SleepyWork("w1");
        TestWork w2 = SleepyWork("w2");

        q0.QueueWorkOn(Cpu, w0);
        q1.QueueWorkOn(Cpu, w1);
        q1.QueueWorkOn(Cpu, w2);

        WaitUntil(() => w0.Runs == 1 && w1.Runs == 1 && w2.Runs == 1, "all three items finished");
    }

    // Grows the CPU's pool to several idle workers first, so no worker creation (a thread start) sits between
    // a sleep and the start it causes; the orderings then depend on concurrency management alone.
    private void WarmUpPool()
    {
        var gate = new Gate("warmup");
        for (int i = 0; i < 4; i++)
        {
            Sys.SystemWq.QueueWorkOn(Cpu, Work($"warmup{i}", _ => gate.Wait()));
        }

        WaitUntil(() => gate.Waiting == 4, "four warm-up items sleep at once");
        gate.Open();
        AsTask(Sys.SystemWq.FlushWorkqueue);
        WorkerPool pool = Sys.CpuWorkerPool(Cpu, highpri: false);
        WaitUntil(() => pool.NrIdleSnapshot == pool.NrWorkersSnapshot, "the pool is idle");
        Assert.That(pool.NrIdleSnapshot, Is.GreaterThanOrEqualTo(4));
    }

    private TestWork SleepyWork(string name) => Work(name, _ =>
    {
        _log.Add($"{name} starts");
        Burn(BurnMs);
        _log.Add($"{name} sleeps");
        Sched.Msleep(SleepMs);
        _log.Add($"{name} finishes");
    });

    // Burns CPU without sleeping: the worker stays in nr_running the whole time.
    private static void Burn(int ms)
    {
        long end = Stopwatch.GetTimestamp() + ms * Stopwatch.Frequency / 1000;
        while (Stopwatch.GetTimestamp() < end)
        {
            Thread.SpinWait(64);
        }
    }
}
