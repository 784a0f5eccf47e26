// fs/btrfs/async-thread.c (v4.4): btrfs_alloc_workqueue (names, thresh rules), thresh_queue_hook /
// thresh_exec_hook (max_active growth and shrinking), normal_work_helper / run_ordered_work (ordered
// completion), the BTRFS_WORK_HELPER entry functions in traces and "Workqueue:" lines, btrfs_queue_work's
// high-priority routing, btrfs_destroy_workqueue and btrfs_workqueue_set_max.
using System.Collections.Concurrent;
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

[TestFixture]
public sealed class AsyncThreadTests
{
    private const WqFlags BtrfsFlags = WqFlags.MemReclaim | WqFlags.Freezable | WqFlags.Unbound;

    private WorkqueueSystem _sys = null!;
    private IKernelLog _savedSink = null!;
    private AdoptedTask _self = null!;

    [SetUp]
    public void SetUp()
    {
        _savedSink = Klog.Sink;
        Klog.Sink = new KernelLog();
        _self = EmuTask.Adopt("async-thread-test");
        _sys = new WorkqueueSystem(new CpuLayout([[0, 1]]), new WorkqueueConfig { ShutdownTimeoutMs = 2000 });
    }

    [TearDown]
    public void TearDown()
    {
        _sys.Dispose();
        _self.Dispose();
        Klog.Sink = _savedSink;
    }

    [Test]
    public void BtrfsAllocWorkqueue_Thresh0_MeansThresh32AndStartsAtMaxActive1()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "flush_delalloc", BtrfsFlags, 8, 0);

        Assert.That(wq.Thresh, Is.EqualTo(32));
        Assert.That(wq.CurrentActive, Is.EqualTo(1));
        Assert.That(wq.NormalWq.MaxActive, Is.EqualTo(1));
        Assert.That(wq.NormalWq.Name, Is.EqualTo("btrfs-flush_delalloc"));
        Assert.That(wq.NormalWq.LockClass.Name, Is.EqualTo("\"%s-%s\"\"btrfs\", name"));
        Assert.That(wq.NormalWq.Rescuer!.Comm, Is.EqualTo("btrfs-flush_del"), "the rescuer is named after the workqueue (15 characters)");
        Assert.That(wq.HighWq, Is.Null);
    }

    [Test]
    public void BtrfsAllocWorkqueue_ThreshBelow32_DisablesThresholdingAtLimitActive()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "endio-write", BtrfsFlags, 4, 2);

        Assert.That(wq.Thresh, Is.EqualTo(-1));
        Assert.That(wq.CurrentActive, Is.EqualTo(4));
        Assert.That(wq.NormalWq.MaxActive, Is.EqualTo(4));
    }

    [Test]
    public void Thresholding_GrowsMaxActiveOnlyOnceMoreThanThreshArePendingAndAnotherItemStarts()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "flush_delalloc", BtrfsFlags, 4, 0);
        var firstGate = new Gate("first");
        var restGate = new Gate("rest");
        var first = new TestWork();
        AsyncThread.BtrfsInitWork(first, "btrfs_flush_delalloc_helper", _ => firstGate.Wait(), null, null);
        AsyncThread.BtrfsQueueWork(wq, first);
        WaitUntil(() => firstGate.Waiting == 1, "the first item runs");

        var rest = new TestWork[34];
        for (int i = 0; i < rest.Length; i++)
        {
            rest[i] = new TestWork();
            AsyncThread.BtrfsInitWork(rest[i], "btrfs_flush_delalloc_helper", _ => restGate.Wait(), null, null);
            AsyncThread.BtrfsQueueWork(wq, rest[i]);
        }

        Assert.That(wq.Pending, Is.EqualTo(34));
        Assert.That(wq.NormalWq.MaxActive, Is.EqualTo(1), "pending alone changes nothing: only a start re-evaluates");

        firstGate.Open();

        // The next start sees 33 > 32 pending and allows a second item, whose start sees 32: no further growth.
        WaitUntil(() => restGate.Waiting == 2, "two items run");
        Assert.That(wq.CurrentActive, Is.EqualTo(2));
        Assert.That(wq.NormalWq.MaxActive, Is.EqualTo(2));
        Assert.That(wq.Pending, Is.EqualTo(32));

        restGate.Open();
        AsTaskFlush(wq.NormalWq);
        Assert.That(wq.CurrentActive, Is.EqualTo(1), "max_active shrinks again once fewer than thresh/2 are pending");
        Assert.That(wq.NormalWq.MaxActive, Is.EqualTo(1));
    }

    [Test]
    public void BtrfsWorkqueueSetMax_CapsTheGrowth()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "flush_delalloc", BtrfsFlags, 8, 0);
        AsyncThread.BtrfsWorkqueueSetMax(wq, 1);
        var gate = new Gate("gate");
        var works = new TestWork[40];
        for (int i = 0; i < works.Length; i++)
        {
            works[i] = new TestWork();
            AsyncThread.BtrfsInitWork(works[i], "btrfs_flush_delalloc_helper", _ => gate.Wait(), null, null);
            AsyncThread.BtrfsQueueWork(wq, works[i]);
        }

        WaitUntil(() => gate.Waiting == 1, "an item runs");

        Assert.That(wq.LimitActive, Is.EqualTo(1));
        Assert.That(wq.CurrentActive, Is.EqualTo(1));
        gate.Open();
        AsTaskFlush(wq.NormalWq);
    }

    [Test]
    public void OrderedWork_OrderedFuncsRunInQueueOrderEvenWhenFuncsFinishOutOfOrder()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "endio-write", BtrfsFlags, 4, 2);
        var log = new ConcurrentQueue<string>();
        var gate = new Gate("gate");
        var works = new TestWork[3];
        for (int i = 0; i < works.Length; i++)
        {
            int n = i;
            works[i] = new TestWork();
            AsyncThread.BtrfsInitWork(
                works[i],
                "btrfs_endio_write_helper",
                _ =>
                {
                    if (n == 0)
                    {
                        gate.Wait();
                    }

                    log.Enqueue($"func{n}");
                },
                _ => log.Enqueue($"ordered{n}"),
                _ => log.Enqueue($"free{n}"));
            AsyncThread.BtrfsQueueWork(wq, works[i]);
        }

        WaitUntil(() => log.Count(e => e.StartsWith("func")) == 2, "the two later funcs finished");
        Assert.That(log, Is.EquivalentTo(new[] { "func1", "func2" }), "nothing ordered runs before the first item is done");

        gate.Open();
        WaitUntil(() => log.Count == 9, "every ordered_func and ordered_free ran");
        string[] ordered = log.Where(e => !e.StartsWith("func")).ToArray();
        Assert.That(ordered, Is.EqualTo(new[] { "ordered0", "free0", "ordered1", "free1", "ordered2", "free2" }));
        Assert.That(Array.IndexOf(log.ToArray(), "func0"), Is.LessThan(Array.IndexOf(log.ToArray(), "ordered0")));
    }

    [Test]
    public void FlushDelallocWork_ShowsTheHelperInWorkerInfoTraceAndHeldLocks()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "flush_delalloc", BtrfsFlags, 8, 0);
        var gate = new Gate("gate");
        var work = new TestWork();
        AsyncThread.BtrfsInitWork(work, "btrfs_flush_delalloc_helper", _ =>
        {
            using KFrame frame = KFunc.Enter("btrfs_run_ordered_extent_work");
            gate.Wait();
        }, null, null);
        AsyncThread.BtrfsQueueWork(wq, work);
        WaitUntil(() => gate.Waiting == 1, "the work blocks");
        EmuTask worker = WorkerRunning(wq.NormalWq);

        string? info = worker.WorkerHooks!.WorkerInfo(worker);
        string[] frames = worker.Frames;
        string[] locks = HeldLocks.Format(worker).Split('\n');

        gate.Open();
        Assert.That(info, Is.EqualTo("btrfs-flush_delalloc btrfs_flush_delalloc_helper"));
        int top = Array.IndexOf(frames, "btrfs_run_ordered_extent_work");
        Assert.That(frames[top..], Is.EqualTo(new[]
        {
            "btrfs_run_ordered_extent_work", "btrfs_scrubparity_helper", "btrfs_flush_delalloc_helper",
            "process_one_work", "worker_thread", "kthread", "ret_from_fork",
        }));
        Assert.That(worker.Comm, Does.Match(@"^kworker/u\d+:\d+$"));
        Assert.That(locks[0], Is.EqualTo($"2 locks held by {worker.Comm}/{worker.Pid}:"));
        Assert.That(locks[1], Does.Match(@"^ #0:  \(""%s-%s""""btrfs"", name\)\{[+.?-]{6}\}, at: process_one_work$"));
        Assert.That(locks[2], Is.EqualTo(" #1:  ((&work->normal_work)){+.+.+.}, at: process_one_work"));
    }

    [Test]
    public void ScrubparityHelper_IsTheFoldedBodyAndPushesOneFrame()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "scrubparity", BtrfsFlags, 1, 0);
        string[]? frames = null;
        var work = new TestWork();
        AsyncThread.BtrfsInitWork(work, "btrfs_scrubparity_helper", _ => frames = EmuTask.CurrentOrThrow.Frames, null, null);

        AsyncThread.BtrfsQueueWork(wq, work);
        AsTaskFlush(wq.NormalWq);

        Assert.That(frames![..2], Is.EqualTo(new[] { "btrfs_scrubparity_helper", "process_one_work" }));
    }

    [Test]
    public void HighPriorityWork_GoesToTheHighQueueWhenThereIsOne()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "worker", BtrfsFlags | WqFlags.Highpri, 4, 16);
        string? seenOn = null;
        var work = new TestWork();
        AsyncThread.BtrfsInitWork(work, "btrfs_worker_helper", _ =>
        {
            EmuTask self = EmuTask.CurrentOrThrow;
            seenOn = self.WorkerHooks!.WorkerInfo(self);
        }, null, null);
        AsyncThread.BtrfsSetWorkHighPriority(work);

        AsyncThread.BtrfsQueueWork(wq, work);
        AsTaskFlush(wq.HighWq!);

        Assert.That(wq.HighWq!.Name, Is.EqualTo("btrfs-worker-high"));
        Assert.That(wq.HighWq.Flags & WqFlags.Highpri, Is.EqualTo(WqFlags.Highpri));
        Assert.That(wq.NormalWq.Flags & WqFlags.Highpri, Is.EqualTo(WqFlags.None));
        Assert.That(seenOn, Is.EqualTo("btrfs-worker-high btrfs_worker_helper"));
    }

    [Test]
    public void BtrfsInitWork_UnknownHelper_Throws()
    {
        var work = new TestWork();

        Assert.That(() => AsyncThread.BtrfsInitWork(work, "btrfs_nonsense_helper", _ => { }, null, null),
            Throws.ArgumentException.With.Message.Contains("btrfs_nonsense_helper"));
    }

    [Test]
    public void BtrfsDestroyWorkqueue_RunsQueuedItemsFirst()
    {
        BtrfsWorkqueue wq = AsyncThread.BtrfsAllocWorkqueue(_sys, "delalloc", BtrfsFlags, 2, 2);
        int ran = 0;
        for (int i = 0; i < 5; i++)
        {
            var work = new TestWork();
            AsyncThread.BtrfsInitWork(work, "btrfs_delalloc_helper", _ => Interlocked.Increment(ref ran), null, null);
            AsyncThread.BtrfsQueueWork(wq, work);
        }

        AsyncThread.BtrfsDestroyWorkqueue(wq);

        Assert.That(ran, Is.EqualTo(5));
        Assert.That(wq.NormalWq.IsDestroyed, Is.True);
    }

    private static void AsTaskFlush(Workqueue wq) => wq.FlushWorkqueue();

    private EmuTask WorkerRunning(Workqueue wq) =>
        _sys.Pools().SelectMany(p => p.WorkerTasks())
            .Single(t => t.WorkerHooks?.WorkerInfo(t)?.StartsWith(wq.Name + " ", StringComparison.Ordinal) == true);

    private sealed class TestWork : BtrfsWork
    {
    }

    // Work functions sleep on it (through schedule()) until the test opens it.
    private sealed class Gate(string name)
    {
        private readonly Completion _open = new(name);
        private int _waiting;

        public int Waiting => Volatile.Read(ref _waiting);

        public void Wait()
        {
            Interlocked.Increment(ref _waiting);
            _open.WaitForCompletion();
            Interlocked.Decrement(ref _waiting);
        }

        public void Open() => _open.CompleteAll();
    }
}
