// The tracer (Emu.Kernel/Trace): what schedule()'s sleeps, work items, requests and the deadlock detector leave in
// a Chrome trace-event timeline, and what a full ring drops. The tracepoints mirror sched_switch,
// workqueue_execute_start/end and block_rq_complete (v4.4); the rings overwrite their oldest entries as ftrace's
// ring buffer does in overwrite mode.
using System.Text.Json;
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
[NonParallelizable]
public sealed class KernelTraceTests : KernelTestBase
{
    private const int TasksPid = 1;
    private const int WorkqueuesPid = 2;
    private const int BlockPid = 3;

    [Test]
    public void SleepOnAMutex_IsASleepSliceNamedAfterTheMutex_WithItsHolderAndTheWaitingFunction()
    {
        using TraceSession session = TraceSession.Start();
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var mutex = new KMutex("&root->ordered_extent_mutex");
        mutex.Lock();
        var waiter = EmuTask.Run("fdm-stress", () =>
        {
            using KFrame frame = KFunc.Enter("btrfs_wait_ordered_extents");
            mutex.Lock();
            mutex.Unlock();
        });
        WaitUntilSleeping(waiter);
        mutex.Unlock();
        JoinOk(waiter);
        session.Stop();

        JsonElement root = TraceJson.Write(session);

        TraceJson.AssertValid(root);
        JsonElement sleep = TraceJson.Slices(root, TasksPid, waiter.Pid).Single(e => e.GetProperty("name").GetString()!.StartsWith("D: ", StringComparison.Ordinal));
        Assert.That(sleep.GetProperty("name").GetString(), Is.EqualTo("D: &root->ordered_extent_mutex (mutex_lock_nested)"));
        JsonElement args = sleep.GetProperty("args");
        Assert.That(args.GetProperty("resource").GetString(), Is.EqualTo("&root->ordered_extent_mutex"));
        Assert.That(args.GetProperty("holder").GetString(), Is.EqualTo($"fdm-stress:{self.Task.Pid}"));
        Assert.That(args.GetProperty("function").GetString(), Is.EqualTo("mutex_lock_nested"));
        Assert.That(args.TryGetProperty("still blocked", out _), Is.False);
        Assert.That(TraceJson.ThreadName(root, TasksPid, waiter.Pid), Is.EqualTo("fdm-stress"));
    }

    [Test]
    public void SleepEndedByAWakeUp_NamesTheWaker_AndAFlowLeadsFromTheWakerToTheWokenTask()
    {
        using TraceSession session = TraceSession.Start();
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        var mutex = new KMutex("&fs_info->ordered_operations_mutex");
        mutex.Lock();
        var waiter = EmuTask.Run("kworker/u4:1", () =>
        {
            mutex.Lock();
            mutex.Unlock();
        });
        WaitUntilSleeping(waiter);
        mutex.Unlock();
        JoinOk(waiter);
        session.Stop();

        JsonElement root = TraceJson.Write(session);

        TraceJson.AssertValid(root);
        JsonElement sleep = TraceJson.Slices(root, TasksPid, waiter.Pid).Single(e => e.GetProperty("name").GetString() != "running");
        Assert.That(sleep.GetProperty("args").GetProperty("woken by").GetString(), Is.EqualTo($"fdm-stress:{self.Task.Pid}"));
        JsonElement finish = TraceJson.Events(root).Single(e => e.GetProperty("ph").GetString() == "f" && e.GetProperty("tid").GetInt32() == waiter.Pid);
        JsonElement start = TraceJson.Events(root).Single(e => e.GetProperty("ph").GetString() == "s" &&
                                                             e.GetProperty("id").GetInt64() == finish.GetProperty("id").GetInt64());
        Assert.That(start.GetProperty("tid").GetInt32(), Is.EqualTo(self.Task.Pid));
        Assert.That(finish.GetProperty("ts").GetDouble(), Is.EqualTo(End(sleep)).Within(0.002));
        Assert.That(start.GetProperty("ts").GetDouble(), Is.LessThanOrEqualTo(finish.GetProperty("ts").GetDouble()));
    }

    [Test]
    public void WakeUp_StartsARunningSliceThatLastsUntilTheNextSleep()
    {
        using TraceSession session = TraceSession.Start();
        var sleeper = EmuTask.Run("kworker/u4:1", () =>
        {
            Sched.Msleep(1);
            Sched.Msleep(1);
        });
        JoinOk(sleeper);
        session.Stop();

        JsonElement root = TraceJson.Write(session);

        TraceJson.AssertValid(root);
        List<JsonElement> slices = TraceJson.Slices(root, TasksPid, sleeper.Pid).OrderBy(e => e.GetProperty("ts").GetDouble()).ToList();
        Assert.That(slices.Select(e => e.GetProperty("name").GetString()), Is.EqualTo(new[] { "D: msleep", "running", "D: msleep" }));
        Assert.That(slices[1].GetProperty("ts").GetDouble(), Is.EqualTo(End(slices[0])).Within(0.002));
        Assert.That(End(slices[1]), Is.EqualTo(slices[2].GetProperty("ts").GetDouble()).Within(0.002));
        Assert.That(slices[0].GetProperty("args").TryGetProperty("woken by", out _), Is.False, "msleep ends by its timeout, not a waker");
    }

    [Test]
    public void TaskStillAsleepWhenWritten_HasASleepSliceEndingAtWriteOut_MarkedStillBlocked()
    {
        var page = new Page(mapping: null, inodeNumber: 257, index: 2, address: 0);
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        Filemap.LockPage(page);
        using TraceSession session = TraceSession.Start();
        var waiter = EmuTask.Run("kworker/u4:1", () =>
        {
            Filemap.LockPage(page);
            Filemap.UnlockPage(page);
        });
        try
        {
            WaitUntilSleeping(waiter);
            session.Stop();

            JsonElement root = TraceJson.Write(session);

            TraceJson.AssertValid(root);
            JsonElement sleep = TraceJson.Slices(root, TasksPid, waiter.Pid).Single();
            Assert.That(sleep.GetProperty("name").GetString(), Is.EqualTo("D: page 2 of inode 257 (__lock_page)"));
            Assert.That(sleep.GetProperty("args").GetProperty("still blocked").GetBoolean(), Is.True);
            Assert.That(sleep.GetProperty("args").GetProperty("holder").GetString(), Is.EqualTo($"fdm-stress:{self.Task.Pid}"));
            Assert.That(End(sleep), Is.EqualTo(root.GetProperty("otherData").GetProperty("durationMs").GetDouble() * 1000).Within(1.0));
            Assert.That(root.GetProperty("otherData").GetProperty("stillBlocked").GetInt32(), Is.EqualTo(1));
        }
        finally
        {
            Filemap.UnlockPage(page);
            JoinOk(waiter);
        }
    }

    [Test]
    public void WorkItem_IsASliceOnItsWorkqueuesTrack_NamedAfterTheWorkFunction_WithItsWorker()
    {
        using var sys = new WorkqueueSystem(new CpuLayout([[0, 1]]), new WorkqueueConfig { ShutdownTimeoutMs = 2000 });
        Workqueue wq = sys.AllocWorkqueue("btrfs-flush_delalloc", WqFlags.Unbound, 1);
        EmuTask? worker = null;
        var work = new WorkStruct(_ => worker = EmuTask.Current, "btrfs_flush_delalloc_helper");
        using TraceSession session = TraceSession.Start();

        wq.QueueWork(work);
        using (EmuTask.Adopt("fdm-stress"))
        {
            wq.FlushWorkqueue();
        }

        session.Stop();
        JsonElement root = TraceJson.Write(session);

        TraceJson.AssertValid(root);
        int tid = TraceJson.Tid(root, WorkqueuesPid, "btrfs-flush_delalloc");
        JsonElement item = TraceJson.Slices(root, WorkqueuesPid, tid).Single();
        Assert.That(item.GetProperty("name").GetString(), Is.EqualTo("btrfs_flush_delalloc_helper"));
        Assert.That(item.GetProperty("args").GetProperty("workqueue").GetString(), Is.EqualTo("btrfs-flush_delalloc"));
        Assert.That(item.GetProperty("args").GetProperty("worker").GetString(), Is.EqualTo($"{worker!.Comm}:{worker.Pid}"));
    }

    [Test]
    public void OverlappingRequests_GoToSeparateLanesOfTheirHardwareQueueTrack()
    {
        using TraceSession session = TraceSession.Start();
        long t0 = KernelTrace.NowNs();
        KernelTrace.BlockRqComplete("emu0", 1, 0, 8, 4096, t0, t0 + 3_000_000, 0);
        KernelTrace.BlockRqComplete("emu0", 1, 1, 16, 8192, t0 + 1_000_000, t0 + 2_000_000, 0);
        KernelTrace.BlockRqComplete("emu0", 1, 0, 24, 4096, t0 + 4_000_000, t0 + 5_000_000, -5);
        session.Stop();

        JsonElement root = TraceJson.Write(session);

        TraceJson.AssertValid(root);
        int lane1 = TraceJson.Tid(root, BlockPid, "emu0 hctx 1");
        int lane2 = TraceJson.Tid(root, BlockPid, "emu0 hctx 1 (2)");
        Assert.That(TraceJson.Slices(root, BlockPid, lane1).Select(e => e.GetProperty("name").GetString()),
            Is.EqualTo(new[] { "READ 4096 @ sector 8", "READ 4096 @ sector 24" }));
        Assert.That(TraceJson.Slices(root, BlockPid, lane2).Select(e => e.GetProperty("name").GetString()),
            Is.EqualTo(new[] { "WRITE 8192 @ sector 16" }));
        JsonElement first = TraceJson.Slices(root, BlockPid, lane1).First();
        Assert.That(first.GetProperty("dur").GetDouble(), Is.EqualTo(3000).Within(0.001));
        Assert.That(TraceJson.Slices(root, BlockPid, lane1).Last().GetProperty("args").GetProperty("error").GetInt32(), Is.EqualTo(-5));
    }

    [Test]
    public void FullRing_DropsTheOldestEntries_AndCountsThemInOtherData()
    {
        const int capacity = 1024; // the ring grows from 256 slots to 1024, then wraps
        const int sleeps = 600;
        using TraceSession session = TraceSession.Start(capacity);
        var sleeper = EmuTask.Run("fdm-stress", () =>
        {
            for (int i = 0; i < sleeps; i++)
            {
                Sched.ScheduleTimeoutUninterruptible(0);
            }
        });
        JoinOk(sleeper);
        session.Stop();

        JsonElement root = TraceJson.Write(session);

        TraceJson.AssertValid(root);
        JsonElement other = root.GetProperty("otherData");
        long dropped = (2 * sleeps) - (capacity - 1); // a start and an end entry per sleep; capacity - 1 are kept
        Assert.That(other.GetProperty("droppedEvents").GetInt64(), Is.EqualTo(dropped));
        Assert.That(other.GetProperty("droppedEventsByTask").GetProperty($"fdm-stress:{sleeper.Pid}").GetInt64(), Is.EqualTo(dropped));
        List<JsonElement> slices = TraceJson.Slices(root, TasksPid, sleeper.Pid).ToList();
        // The oldest entry kept is the end of a sleep whose start was dropped; the newest whole sleeps remain.
        Assert.That(slices.Count(e => e.GetProperty("name").GetString() != "running"), Is.EqualTo((capacity - 2) / 2));
        Assert.That(slices.Count(e => e.GetProperty("name").GetString() == "running"), Is.EqualTo((capacity - 2) / 2));
    }

    [Test]
    public void Deadlock_IsAGlobalInstantEventListingTheCycle()
    {
        using var detector = new DeadlockDetector();
        detector.Install();
        using TraceSession session = TraceSession.Start();
        var mutex = new KMutex("&test->trace_mutex");
        var page = new Page(mapping: null, inodeNumber: 257, index: 2, address: 0);
        var aHasMutex = new Completion("a_has_mutex");
        var bHasPage = new Completion("b_has_page");
        var a = EmuTask.Run("fdm-stress", () =>
        {
            mutex.Lock();
            aHasMutex.Complete();
            bHasPage.WaitForCompletion();
            Filemap.LockPage(page);
            Filemap.UnlockPage(page);
            mutex.Unlock();
        });
        var b = EmuTask.Run("fdm-stress", () =>
        {
            aHasMutex.WaitForCompletion();
            Filemap.LockPage(page);
            bHasPage.Complete();
            mutex.Lock();
            mutex.Unlock();
        });
        try
        {
            Assert.That(detector.WaitForDeadlock(10_000), Is.Not.Null, "no deadlock reported");
            WaitUntil(() => a.WaitingOn == page && b.WaitingOn == mutex, "both tasks sleep in the cycle");

            JsonElement root = TraceJson.Write(session);

            TraceJson.AssertValid(root);
            JsonElement instant = TraceJson.Events(root).Single(e => e.GetProperty("ph").GetString() == "i");
            Assert.That(instant.GetProperty("name").GetString(), Is.EqualTo("deadlock: circular wait between 2 tasks"));
            Assert.That(instant.GetProperty("s").GetString(), Is.EqualTo("g"));
            Assert.That(instant.GetProperty("args").GetProperty("cycle").EnumerateArray().Select(c => c.GetString()), Is.EquivalentTo(new[]
            {
                $"fdm-stress:{a.Pid} waits for page 2 of inode 257 held by fdm-stress:{b.Pid}",
                $"fdm-stress:{b.Pid} waits for &test->trace_mutex held by fdm-stress:{a.Pid}",
            }));
        }
        finally
        {
            session.Stop();
            WaitUntil(() => b.WaitingOn == mutex, "b waits for the mutex");
            Filemap.UnlockPage(page);
            JoinOk(a);
            JoinOk(b);
        }
    }

    [Test]
    public void WithoutASession_TracepointsAreOff_AndASessionSeesOnlyWhatFollowsItsStart()
    {
        Assert.That(KernelTrace.Enabled, Is.False);
        var before = EmuTask.Run("fdm-stress", () => Sched.ScheduleTimeoutUninterruptible(1));
        JoinOk(before);

        using TraceSession session = TraceSession.Start();
        Assert.That(KernelTrace.Enabled, Is.True);
        session.Stop();
        Assert.That(KernelTrace.Enabled, Is.False);

        JsonElement root = TraceJson.Write(session);
        Assert.That(TraceJson.Slices(root, TasksPid, before.Pid), Is.Empty);
        Assert.That(root.GetProperty("otherData").GetProperty("entriesWritten").GetInt64(), Is.Zero);
    }

    [Test]
    public void Start_WhileAnotherSessionRecords_Throws()
    {
        using TraceSession session = TraceSession.Start();

        Assert.That(() => TraceSession.Start(), Throws.InvalidOperationException);
        session.Stop();
        using TraceSession next = TraceSession.Start();
        Assert.That(next.IsRecording, Is.True);
    }

    private static double End(JsonElement slice) => slice.GetProperty("ts").GetDouble() + slice.GetProperty("dur").GetDouble();

    // Reading a written trace back.
    private static class TraceJson
    {
        public static JsonElement Write(TraceSession session)
        {
            using var stream = new MemoryStream();
            session.WriteChromeJson(stream);
            using JsonDocument doc = JsonDocument.Parse(stream.ToArray());
            return doc.RootElement.Clone();
        }

        public static IEnumerable<JsonElement> Events(JsonElement root) => root.GetProperty("traceEvents").EnumerateArray();

        public static IEnumerable<JsonElement> Slices(JsonElement root, int pid, int tid) =>
            Events(root).Where(e => e.GetProperty("ph").GetString() == "X" && e.GetProperty("pid").GetInt32() == pid && e.GetProperty("tid").GetInt32() == tid);

        public static string? ThreadName(JsonElement root, int pid, int tid) =>
            Events(root).Single(e => e.GetProperty("name").GetString() == "thread_name" && e.GetProperty("pid").GetInt32() == pid && e.GetProperty("tid").GetInt32() == tid)
                .GetProperty("args").GetProperty("name").GetString();

        public static int Tid(JsonElement root, int pid, string threadName) =>
            Events(root).Single(e => e.GetProperty("name").GetString() == "thread_name" && e.GetProperty("pid").GetInt32() == pid &&
                                     e.GetProperty("args").GetProperty("name").GetString() == threadName).GetProperty("tid").GetInt32();

        // The JSON Object Format: every event names its phase, time, process, thread and name; slices have a
        // non-negative duration, and the slices of one thread nest.
        public static void AssertValid(JsonElement root)
        {
            Assert.That(root.GetProperty("displayTimeUnit").GetString(), Is.EqualTo("ms"));
            foreach (JsonElement e in Events(root))
            {
                foreach (string field in new[] { "ph", "ts", "pid", "tid", "name" })
                {
                    Assert.That(e.TryGetProperty(field, out _), Is.True, $"event without {field}: {e}");
                }

                if (e.GetProperty("ph").GetString() == "X")
                {
                    Assert.That(e.GetProperty("dur").GetDouble(), Is.GreaterThanOrEqualTo(0), e.ToString());
                }
            }

            foreach (var track in Events(root).Where(e => e.GetProperty("ph").GetString() == "X")
                         .GroupBy(e => (e.GetProperty("pid").GetInt32(), e.GetProperty("tid").GetInt32())))
            {
                var sorted = track.OrderBy(e => e.GetProperty("ts").GetDouble()).ToList();
                for (int i = 1; i < sorted.Count; i++)
                {
                    double prevEnd = sorted[i - 1].GetProperty("ts").GetDouble() + sorted[i - 1].GetProperty("dur").GetDouble();
                    Assert.That(sorted[i].GetProperty("ts").GetDouble(), Is.GreaterThanOrEqualTo(prevEnd - 0.002), $"overlapping slices on track {track.Key}");
                }
            }
        }
    }
}
