// Emu's wait-for graph: circular waits over mutexes, page locks, rwsems and completions are reported as soon as
// the last task of the cycle goes to sleep, once, with the victims blocked behind them; chains without a cycle
// are not reported. The AB-BA scenario is the shape of ade770294df2's deadlock: one task holds what the other
// needs (there the io-tree range and page 2; here a mutex and page 2).
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class DeadlockDetectorTests : KernelTestBase
{
    private DeadlockDetector _detector = null!;
    private SleepProbe _probe = null!;

    [SetUp]
    public void InstallDetector()
    {
        _detector = new DeadlockDetector();
        _detector.Install();
        _probe = new SleepProbe();
        Sched.AddSleepObserver(_probe);
    }

    [TearDown]
    public void UninstallDetector()
    {
        Sched.RemoveSleepObserver(_probe);
        _detector.Dispose();
    }

    [Test]
    public void AbBaDeadlock_IsReportedByTheTaskThatClosesTheCycleBeforeItBlocks()
    {
        EmuTask? detectedOn = null;
        TaskState closerState = TaskState.Running;
        var abba = new AbBaDeadlock();
        _detector.DeadlockDetected += _ =>
        {
            detectedOn = EmuTask.Current;
            closerState = abba.B.State;
        };

        try
        {
            WaitUntil(() => _probe.Saw(abba.A, abba.Page), "A sleeps on page 2");
            abba.CloseCycle();
            DeadlockReport? report = _detector.WaitForDeadlock(10_000);

            Assert.That(report, Is.Not.Null, "no deadlock reported");
            Assert.That(report!.ClosedBy, Is.SameAs(abba.B));
            Assert.That(detectedOn, Is.SameAs(abba.B), "detection must run on the closing task itself");
            Assert.That(closerState, Is.EqualTo(TaskState.Uninterruptible), "detection must run before the closing task blocks");
            Assert.That(report.DetectedAtMs - abba.B.SleepStartMs, Is.InRange(0, 1000));
            Assert.That(report.Tasks, Is.EqualTo(new[] { abba.B, abba.A }));
            Assert.That(report.Resources, Is.EqualTo(new IWaitResource[] { abba.Mutex, abba.Page }));
            Assert.That(report.Cycle.Select(e => e.Holder), Is.EqualTo(new[] { abba.A, abba.B }));
            Assert.That(report.Victims, Is.Empty);
            Assert.That(LinesFrom("emu: deadlock detected:", 4), Is.EqualTo(new[]
            {
                "emu: deadlock detected: circular wait between 2 tasks",
                $"  fdm-stress:{abba.B.Pid} waits for &test->abba_mutex held by fdm-stress:{abba.A.Pid}",
                $"  fdm-stress:{abba.A.Pid} waits for page 2 of inode 257 held by fdm-stress:{abba.B.Pid}",
                $"  cycle: fdm-stress:{abba.B.Pid} -> fdm-stress:{abba.A.Pid} -> fdm-stress:{abba.B.Pid}",
            }));
            Assert.That(report.Lines, Is.EqualTo(LinesFrom("emu: deadlock detected:", 4)));
        }
        finally
        {
            abba.Release();
        }

        Assert.That(_detector.DeadlocksDetected, Is.EqualTo(1));
    }

    [Test]
    public void AbBaDeadlock_BothTasksAreThenReportedHungWithTheirTracesAndHeldLocks()
    {
        using var khungtaskd = new HungTaskDetector(hungTaskTimeoutMs: 250);
        khungtaskd.Start();
        var abba = new AbBaDeadlock();
        try
        {
            WaitUntil(() => _probe.Saw(abba.A, abba.Page), "A sleeps on page 2");
            abba.CloseCycle();
            Assert.That(_detector.WaitForDeadlock(10_000), Is.Not.Null, "no deadlock reported");
            WaitUntil(
                () => khungtaskd.Reports.Any(r => r.Task == abba.A) && khungtaskd.Reports.Any(r => r.Task == abba.B),
                "khungtaskd reports both tasks");
        }
        finally
        {
            khungtaskd.Stop();
            abba.Release();
        }

        HungTaskReport a = khungtaskd.Reports.Single(r => r.Task == abba.A);
        HungTaskReport b = khungtaskd.Reports.Single(r => r.Task == abba.B);
        string pageUsage = LockClass.Get("PG_locked").Usage;
        Assert.That(a.Lines, Is.EqualTo(new[]
        {
            $"INFO: task fdm-stress:{abba.A.Pid} blocked for more than 0.25 seconds.",
            $"      {Klog.PrintTainted()} 4.4.0-emu #1",
            "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
            $"fdm-stress      D     0 {abba.A.Pid,5} {abba.A.ParentPid,6} 0x00000000",
            "Call Trace:",
            " schedule",
            " schedule_timeout",
            " io_schedule_timeout",
            " bit_wait_io",
            " __wait_on_bit_lock",
            " __lock_page",
            " lock_page",
            " btrfs_direct_IO",
            $"1 lock held by fdm-stress/{abba.A.Pid}:",
            " #0:  (&test->abba_mutex){+.+...}, at: btrfs_direct_IO",
        }));
        Assert.That(b.Lines.Skip(4), Is.EqualTo(new[]
        {
            "Call Trace:",
            " schedule",
            " schedule_preempt_disabled",
            " mutex_lock_nested",
            " __btrfs_buffered_write",
            $"1 lock held by fdm-stress/{abba.B.Pid}:",
            $" #0:  (page 2 of inode 257){pageUsage}, at: __btrfs_buffered_write",
        }));
        Assert.That(a.BlockedForMs, Is.GreaterThanOrEqualTo(250));
        Assert.That(Log.Lines, Is.SupersetOf(a.Lines));
    }

    [Test]
    public void AbBaDeadlock_ListsTasksBlockedBehindTheCycleAsVictims()
    {
        var victimMutex = new KMutex("&test->victim_mutex");
        var ordered = new Completion("btrfs_wait_ordered_extents");
        var abba = new AbBaDeadlock(afterPageLock: ordered.Complete);
        ordered.ExpectedCompleter = abba.A;
        EmuTask? waiter = null;
        EmuTask? mutexWaiter = null;
        EmuTask? lateWaiter = null;
        try
        {
            waiter = EmuTask.Run("kworker/u4:2", () =>
            {
                victimMutex.Lock();
                ordered.WaitForCompletion();
                victimMutex.Unlock();
            }, parentPid: 2);
            WaitUntil(() => _probe.Saw(waiter, ordered), "the kworker waits for the completion");
            mutexWaiter = EmuTask.Run("fdm-stress", () =>
            {
                victimMutex.Lock();
                victimMutex.Unlock();
            });
            WaitUntil(() => _probe.Saw(mutexWaiter, victimMutex), "the second victim waits for the mutex");
            WaitUntil(() => _probe.Saw(abba.A, abba.Page), "A sleeps on page 2");

            abba.CloseCycle();
            DeadlockReport? report = _detector.WaitForDeadlock(10_000);

            Assert.That(report, Is.Not.Null, "no deadlock reported");
            Assert.That(report!.Victims, Is.EqualTo(new[]
            {
                new DeadlockVictim(waiter, ordered, abba.A, ThroughCycleMember: true),
                new DeadlockVictim(mutexWaiter, victimMutex, waiter, ThroughCycleMember: false),
            }));
            Assert.That(report.Lines.Skip(4), Is.EqualTo(new[]
            {
                $"  victim: kworker/u4:2:{waiter.Pid} waits for completion btrfs_wait_ordered_extents, to be completed by fdm-stress:{abba.A.Pid} (in the cycle)",
                $"  victim: fdm-stress:{mutexWaiter.Pid} waits for &test->victim_mutex held by kworker/u4:2:{waiter.Pid} (victim)",
            }));

            lateWaiter = EmuTask.Run("fdm-stress", () =>
            {
                victimMutex.Lock();
                victimMutex.Unlock();
            });
            WaitUntil(() => _probe.Saw(lateWaiter, victimMutex), "a late victim waits for the mutex");

            Assert.That(LinesFrom("emu: deadlock: another task", 2), Is.EqualTo(new[]
            {
                $"emu: deadlock: another task blocked behind the circular wait of fdm-stress:{abba.B.Pid}, fdm-stress:{abba.A.Pid}",
                $"  victim: fdm-stress:{lateWaiter.Pid} waits for &test->victim_mutex held by kworker/u4:2:{waiter.Pid} (victim)",
            }));
            Assert.That(DeadlockDetector.FindVictims(report).Select(v => v.Task), Is.EquivalentTo(new[] { waiter, mutexWaiter, lateWaiter }));
            Assert.That(_detector.DeadlocksDetected, Is.EqualTo(1));
        }
        finally
        {
            abba.Release();
        }

        JoinOk(waiter);
        JoinOk(mutexWaiter);
        JoinOk(lateWaiter);
    }

    [Test]
    public void WaitChainWithoutACycle_IsNotReported()
    {
        var mutex = new KMutex("&test->chain_mutex");
        var hostDone = new Completion("host_done");
        var holder = EmuTask.Run("fdm-stress", () =>
        {
            mutex.Lock();
            hostDone.WaitForCompletion();
            mutex.Unlock();
        });
        WaitUntil(() => _probe.Saw(holder, hostDone), "the holder waits for the host");
        var waiter = EmuTask.Run("fdm-stress", () =>
        {
            mutex.Lock();
            mutex.Unlock();
        });
        WaitUntil(() => _probe.Saw(waiter, mutex), "the waiter sleeps on the holder's mutex");

        int scanned = _detector.Scan();
        hostDone.Complete();
        JoinOk(holder);
        JoinOk(waiter);

        Assert.That(scanned, Is.Zero);
        Assert.That(_detector.Reports, Is.Empty);
        Assert.That(Log.Lines.Where(l => l.StartsWith("emu: deadlock", StringComparison.Ordinal)), Is.Empty);
    }

    [Test]
    public void LockPage_OnAPageTheTaskAlreadyHolds_IsACircularWaitOfOneTask()
    {
        Page page = new(mapping: null, inodeNumber: 257, index: 5, address: 0);
        var task = EmuTask.Run("fdm-stress", () =>
        {
            Filemap.LockPage(page);
            Filemap.LockPage(page);
            Filemap.UnlockPage(page);
        });

        DeadlockReport? report = _detector.WaitForDeadlock(10_000);
        Filemap.UnlockPage(page);
        JoinOk(task);

        Assert.That(report, Is.Not.Null, "no deadlock reported");
        Assert.That(report!.Lines.Take(3), Is.EqualTo(new[]
        {
            "emu: deadlock detected: circular wait between 1 task",
            $"  fdm-stress:{task.Pid} waits for page 5 of inode 257 held by fdm-stress:{task.Pid}",
            $"  cycle: fdm-stress:{task.Pid} -> fdm-stress:{task.Pid}",
        }));
    }

    [Test]
    public void RwsemWriter_BlockedByAReaderThatWaitsForTheWriter_IsACycleFoundPastTheOtherReader()
    {
        var sem = new RwSemaphore("&fs_info->test_sem");
        Page page = new(mapping: null, inodeNumber: 257, index: 7, address: 0);
        var otherReaderDone = new Completion("other_reader_done");
        var readerGo = new Completion("reader_go");
        var otherReader = EmuTask.Run("fdm-stress", () =>
        {
            sem.DownRead();
            otherReaderDone.WaitForCompletion();
            sem.UpRead();
        });
        WaitUntil(() => _probe.Saw(otherReader, otherReaderDone), "the first reader holds the rwsem");
        var reader = EmuTask.Run("fdm-stress", () =>
        {
            sem.DownRead();
            readerGo.WaitForCompletion();
            Filemap.LockPage(page);
            Filemap.UnlockPage(page);
            sem.UpRead();
        });
        WaitUntil(() => _probe.Saw(reader, readerGo), "the second reader holds the rwsem");
        var writer = EmuTask.Run("fdm-stress", () =>
        {
            Filemap.LockPage(page);
            sem.DownWrite();
            sem.UpWrite();
        });
        WaitUntil(() => _probe.Saw(writer, sem), "the writer waits for both readers");

        readerGo.Complete();
        DeadlockReport? report = _detector.WaitForDeadlock(10_000);
        Filemap.UnlockPage(page);
        otherReaderDone.Complete();
        JoinOk(reader);
        JoinOk(otherReader);
        JoinOk(writer);

        Assert.That(report, Is.Not.Null, "no deadlock reported");
        Assert.That(report!.Tasks, Is.EqualTo(new[] { reader, writer }));
        Assert.That(report.Resources, Is.EqualTo(new IWaitResource[] { page, sem }));
        Assert.That(report.Victims, Is.Empty, "the other reader waits for the host, not for the cycle");
    }

    [Test]
    public void Scan_FindsACycleClosedByAnExpectedCompleterSetAfterTheSleeps()
    {
        var mutex = new KMutex("&test->scan_mutex");
        var work = new Completion("flush_work");
        var waiter = EmuTask.Run("fdm-stress", () =>
        {
            mutex.Lock();
            work.WaitForCompletion();
            mutex.Unlock();
        });
        WaitUntil(() => _probe.Saw(waiter, work), "the waiter waits for the work");
        var worker = EmuTask.Run("kworker/u4:1", () =>
        {
            mutex.Lock();
            mutex.Unlock();
        }, parentPid: 2);
        WaitUntil(() => _probe.Saw(worker, mutex), "the worker waits for the mutex");
        Assert.That(_detector.Reports, Is.Empty);

        work.ExpectedCompleter = worker;
        int found = _detector.Scan();
        int foundAgain = _detector.Scan();
        work.Complete();
        JoinOk(waiter);
        JoinOk(worker);

        Assert.That(found, Is.EqualTo(1));
        Assert.That(foundAgain, Is.Zero, "a cycle is reported once");
        DeadlockReport report = _detector.Reports.Single();
        Assert.That(report.ClosedBy, Is.Null);
        Assert.That(report.Tasks, Is.EqualTo(new[] { waiter, worker }), "without a closing task the lowest pid comes first");
        Assert.That(report.Lines[1], Is.EqualTo($"  fdm-stress:{waiter.Pid} waits for completion flush_work, to be completed by kworker/u4:1:{worker.Pid}"));
    }

    [Test]
    public void Detectors_AreIndependent_AndAnUninstalledOneSeesNothing()
    {
        using var other = new DeadlockDetector();
        other.Install();
        other.Uninstall();
        Page page = new(mapping: null, inodeNumber: 257, index: 9, address: 0);
        var task = EmuTask.Run("fdm-stress", () =>
        {
            Filemap.LockPage(page);
            Filemap.LockPage(page);
            Filemap.UnlockPage(page);
        });

        Assert.That(_detector.WaitForDeadlock(10_000), Is.Not.Null);
        Filemap.UnlockPage(page);
        JoinOk(task);

        Assert.That(other.Reports, Is.Empty);
        Assert.That(other.WaitForDeadlock(0), Is.Null);
    }

    [Test]
    public void SleepStarted_OnAChainWithoutACycle_AllocatesNothing()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var mutex = new KMutex("&test->alloc_mutex");
        mutex.Lock();
        var waiter = EmuTask.Run("fdm-stress", () =>
        {
            mutex.Lock();
            mutex.Unlock();
        });
        WaitUntil(() => _probe.Saw(waiter, mutex), "the waiter sleeps on the mutex");
        ISleepObserver observer = _detector;
        observer.SleepStarted(waiter);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            observer.SleepStarted(waiter);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        mutex.Unlock();
        JoinOk(waiter);

        Assert.That(allocated, Is.Zero);
        Assert.That(_detector.Reports, Is.Empty);
    }

    [Test]
    public void DeadlockDetected_HandlerThatThrows_IsReportedAsABugAndTheTaskStaysUsable()
    {
        _detector.DeadlockDetected += _ => throw new InvalidOperationException("boom");
        Page page = new(mapping: null, inodeNumber: 257, index: 11, address: 0);
        var task = EmuTask.Run("fdm-stress", () =>
        {
            Filemap.LockPage(page);
            Filemap.LockPage(page);
            Filemap.UnlockPage(page);
        });

        Assert.That(_detector.WaitForDeadlock(10_000), Is.Not.Null);
        Filemap.UnlockPage(page);
        JoinOk(task);

        Assert.That(Log.Lines, Does.Contain("BUG: DeadlockDetected handler failed: InvalidOperationException: boom"));
    }

    [Test]
    public void WaitForDeadlock_FromAnEmulatedTask_Throws()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");

        Assert.That(() => _detector.WaitForDeadlock(0), Throws.InvalidOperationException);
    }

    private string[] LinesFrom(string prefix, int count)
    {
        string[] lines = Log.Lines;
        int start = Array.FindIndex(lines, l => l.StartsWith(prefix, StringComparison.Ordinal));
        Assert.That(start, Is.GreaterThanOrEqualTo(0), $"no log line starts with '{prefix}'");
        return lines.Skip(start).Take(count).ToArray();
    }

    // Task A holds the mutex and sleeps on page 2; task B holds page 2 and, once CloseCycle is called, sleeps on
    // the mutex. Release unlocks the page from the host, which lets A, then B, finish.
    private sealed class AbBaDeadlock
    {
        private readonly Completion _pageLocked = new("page_locked");
        private readonly Completion _closeCycle = new("close_cycle");

        public AbBaDeadlock(Action? afterPageLock = null)
        {
            A = EmuTask.Run("fdm-stress", () =>
            {
                using KFrame frame = KFunc.Enter("btrfs_direct_IO");
                Mutex.Lock();
                _pageLocked.WaitForCompletion();
                Filemap.LockPage(Page);
                afterPageLock?.Invoke();
                Filemap.UnlockPage(Page);
                Mutex.Unlock();
            });
            B = EmuTask.Run("fdm-stress", () =>
            {
                using KFrame frame = KFunc.Enter("__btrfs_buffered_write");
                Filemap.LockPage(Page);
                _pageLocked.Complete();
                _closeCycle.WaitForCompletion();
                Mutex.Lock();
                Mutex.Unlock();
            });
        }

        public KMutex Mutex { get; } = new("&test->abba_mutex");

        public Page Page { get; } = new(mapping: null, inodeNumber: 257, index: 2, address: 0);

        public EmuTask A { get; }

        public EmuTask B { get; }

        public void CloseCycle() => _closeCycle.Complete();

        public void Release()
        {
            CloseCycle();
            WaitUntil(() => B.WaitingOn == Mutex && Page.LockOwner == B, "B holds page 2 and waits for the mutex");
            Filemap.UnlockPage(Page);
            JoinOk(A);
            JoinOk(B);
        }
    }
}
