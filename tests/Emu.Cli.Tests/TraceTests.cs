using System.Text.Json;

namespace Emu.Cli.Tests;

/// <summary>
/// `--trace FILE`: a Chrome trace-event timeline of the run. The unpatched repro's timeline shows the cycle of
/// ade770294df2 as it happened: the O_DIRECT read asleep on page 2 (lock_page in btrfs_start_ordered_extent),
/// the buffered write asleep on the extent range [0, 4095] (lock_extent_bits), the btrfs-flush_delalloc kworker
/// asleep on page 2 inside btrfs_flush_delalloc_helper, the deadlock and the hung-task reports.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class TraceTests
{
    private static string TraceFile(string name)
    {
        string path = Path.Combine(CliHarness.ScratchDir(nameof(TraceTests)), name);
        File.Delete(path);
        return path;
    }

    [Test]
    public void ReproUnpatched_WritesATimelineWithTheCyclesSleepsTheDeadlockAndTheHungTasks()
    {
        string file = TraceFile("unpatched.json");

        // Unpatched leaves its deadlocked tasks blocked for good, so it runs in a child, as in ReproCommandTests.
        var (code, stdout, stderr) = Emu.Cli.Commands.ChildRun.Run(
            ["repro", "--mode", "unpatched", "--engine", "mem", "--hung-task-timeout", "200ms", "--json", "--trace", file]);

        Assert.That(code, Is.EqualTo(1), stderr);
        using var result = JsonDocument.Parse(stdout);
        int Pid(string role) =>
            result.RootElement.GetProperty("hungTasks").EnumerateArray().Select(h => h.GetProperty("task"))
                .Single(t => t.GetProperty("role").GetString() == role).GetProperty("pid").GetInt32();
        using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
        JsonElement root = doc.RootElement;
        TraceAssert.Valid(root);
        int tasksPid = TraceAssert.ProcessPid(root, "emu repro unpatched");

        JsonElement reader = TraceAssert.LastSleep(root, tasksPid, Pid("dio-reader"));
        Assert.That(reader.GetProperty("name").GetString(), Is.EqualTo("D: page 2 of inode 257 (__lock_page)"));
        Assert.That(reader.GetProperty("args").GetProperty("holder").GetString(), Is.EqualTo($"fdm-stress:{Pid("buffered-writer")}"));
        Assert.That(reader.GetProperty("args").GetProperty("still blocked").GetBoolean(), Is.True);

        JsonElement writer = TraceAssert.LastSleep(root, tasksPid, Pid("buffered-writer"));
        Assert.That(writer.GetProperty("name").GetString(), Is.EqualTo("D: extent range [0, 4095] of inode 257 (lock_extent_bits)"));
        Assert.That(writer.GetProperty("args").GetProperty("resource").GetString(), Is.EqualTo("extent range [0, 4095] of inode 257"));
        Assert.That(writer.GetProperty("args").GetProperty("holder").GetString(), Is.EqualTo($"fdm-stress:{Pid("dio-reader")}"));

        int kworker = Pid("flush_delalloc-worker");
        JsonElement flusher = TraceAssert.LastSleep(root, tasksPid, kworker);
        Assert.That(flusher.GetProperty("name").GetString(), Is.EqualTo("D: page 2 of inode 257 (__lock_page)"));
        Assert.That(TraceAssert.ThreadName(root, tasksPid, kworker), Does.StartWith("kworker/u"));

        JsonElement snapshot = TraceAssert.LastSleep(root, tasksPid, Pid("snapshot"));
        Assert.That(snapshot.GetProperty("name").GetString(), Is.EqualTo("D: completion &ordered->completion (wait_for_completion)"));
        Assert.That(snapshot.GetProperty("args").GetProperty("holder").GetString(), Does.EndWith($":{kworker}"));

        int workqueuesPid = TraceAssert.ProcessPid(root, "emu repro unpatched: workqueues");
        JsonElement work = TraceAssert.Events(root).Single(e => e.GetProperty("pid").GetInt32() == workqueuesPid && e.GetProperty("ph").GetString() == "X" &&
                                                                 e.GetProperty("name").GetString() == "btrfs_flush_delalloc_helper");
        Assert.That(work.GetProperty("args").GetProperty("workqueue").GetString(), Is.EqualTo("btrfs-flush_delalloc"));
        Assert.That(work.GetProperty("args").GetProperty("worker").GetString(), Does.EndWith($":{kworker}"));
        Assert.That(work.GetProperty("args").GetProperty("still running").GetBoolean(), Is.True);

        var instants = TraceAssert.Events(root).Where(e => e.GetProperty("ph").GetString() == "i").ToList();
        Assert.That(instants.Count(e => e.GetProperty("name").GetString() == "deadlock: circular wait between 2 tasks"), Is.EqualTo(1));
        Assert.That(instants.Where(e => e.GetProperty("name").GetString()!.StartsWith("hung task: ", StringComparison.Ordinal)).Select(e => e.GetProperty("tid").GetInt32()),
            Is.SupersetOf(result.RootElement.GetProperty("hungTasks").EnumerateArray().Select(h => h.GetProperty("task").GetProperty("pid").GetInt32())));
        Assert.That(TraceAssert.Events(root).Any(e => e.GetProperty("cat").GetString() == "block"), Is.True, "the writes before the deadlock are on the blk-mq tracks");
    }

    [Test]
    public void ReproBoth_MergesTheChildRunsTracesIntoOneFile_OneProcessGroupPerRun()
    {
        string file = TraceFile("both.json");

        var r = CliHarness.Run("repro", "--mode", "both", "--engine", "mem", "--hung-task-timeout", "200ms", "--json", "--trace", file);

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
        JsonElement root = doc.RootElement;
        TraceAssert.Valid(root);
        var processes = TraceAssert.Events(root).Where(e => e.GetProperty("name").GetString() == "process_name")
            .ToDictionary(e => e.GetProperty("args").GetProperty("name").GetString()!, e => e.GetProperty("pid").GetInt32());
        Assert.That(processes.Keys, Is.EquivalentTo(new[]
        {
            "unpatched run 1", "unpatched run 1: workqueues", "unpatched run 1: blk-mq",
            "patched run 1", "patched run 1: workqueues", "patched run 1: blk-mq",
        }));
        Assert.That(processes.Values.Distinct().Count(), Is.EqualTo(6));
        var deadlocks = TraceAssert.Events(root).Where(e => e.GetProperty("name").GetString()!.StartsWith("deadlock", StringComparison.Ordinal)).ToList();
        Assert.That(deadlocks.Select(e => e.GetProperty("pid").GetInt32()), Is.EqualTo(new[] { processes["unpatched run 1"] }));
        IEnumerable<double> Times(int pid) => TraceAssert.Events(root).Where(e => e.GetProperty("pid").GetInt32() == pid && e.GetProperty("ph").GetString() == "X")
            .Select(e => e.GetProperty("ts").GetDouble());
        Assert.That(Times(processes["patched run 1"]).Min(), Is.GreaterThan(Times(processes["unpatched run 1"]).Max()), "the runs line up in the order they ran");
        Assert.That(root.GetProperty("otherData").GetProperty("runs").EnumerateArray().Select(run => run.GetProperty("label").GetString()),
            Is.EqualTo(new[] { "unpatched run 1", "patched run 1" }));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(file)!, "both.json.run*"), Is.Empty, "the children's parts are merged and removed");
    }

    [Test]
    public void StressPatched_WritesWorkItemsAndRequestsOnTheirTracks()
    {
        string file = TraceFile("stress.json");

        var r = CliHarness.Run("stress", "--mode", "patched", "--engine", "mem", "--runtime", "1", "--seed", "3", "--json", "--trace", file);

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stdout + r.Stderr);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
        JsonElement root = doc.RootElement;
        TraceAssert.Valid(root);
        int workqueuesPid = TraceAssert.ProcessPid(root, "emu stress patched seed 3: workqueues");
        int blockPid = TraceAssert.ProcessPid(root, "emu stress patched seed 3: blk-mq");
        var slices = TraceAssert.Events(root).Where(e => e.GetProperty("ph").GetString() == "X").ToList();
        Assert.That(slices.Any(e => e.GetProperty("pid").GetInt32() == workqueuesPid), Is.True, "work items");
        Assert.That(slices.Where(e => e.GetProperty("pid").GetInt32() == blockPid).Select(e => e.GetProperty("name").GetString()),
            Has.Some.Match(@"^(READ|WRITE) \d+ @ sector \d+$"));
        Assert.That(root.GetProperty("otherData").GetProperty("seed").GetString(), Is.EqualTo("3"));
    }

    [TestCase("repro --mode unpatched --engine mem")]
    [TestCase("stress --mode patched --engine mem --runtime 1")]
    public void TraceInADirectoryThatDoesNotExist_IsAUsageError_BeforeAnythingRuns(string commandLine)
    {
        string missing = Path.Combine(CliHarness.ScratchDir(nameof(TraceTests)), "no-such-dir", "t.json");

        var r = CliHarness.Run([.. commandLine.Split(' '), "--trace", missing]);

        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("--trace").And.Contain("does not exist"));
        Assert.That(r.Stdout, Is.Empty);
        Assert.That(File.Exists(missing), Is.False);
    }

    // Reading a trace back and checking the JSON Object Format.
    private static class TraceAssert
    {
        public static IEnumerable<JsonElement> Events(JsonElement root) => root.GetProperty("traceEvents").EnumerateArray();

        // Every event names its phase, time, process, thread and name; B/E pairs balance per thread; slices have
        // a non-negative duration.
        public static void Valid(JsonElement root)
        {
            Assert.That(root.GetProperty("displayTimeUnit").GetString(), Is.EqualTo("ms"));
            Assert.That(root.GetProperty("otherData").ValueKind, Is.EqualTo(JsonValueKind.Object));
            var open = new Dictionary<(int, int), int>();
            foreach (JsonElement e in Events(root))
            {
                foreach (string field in new[] { "ph", "ts", "pid", "tid", "name" })
                {
                    Assert.That(e.TryGetProperty(field, out _), Is.True, $"event without {field}: {e}");
                }

                var key = (e.GetProperty("pid").GetInt32(), e.GetProperty("tid").GetInt32());
                switch (e.GetProperty("ph").GetString())
                {
                    case "B":
                        open[key] = open.GetValueOrDefault(key) + 1;
                        break;
                    case "E":
                        open[key] = open.GetValueOrDefault(key) - 1;
                        Assert.That(open[key], Is.GreaterThanOrEqualTo(0), $"E without B on {key}");
                        break;
                    case "X":
                        Assert.That(e.GetProperty("dur").GetDouble(), Is.GreaterThanOrEqualTo(0), e.ToString());
                        break;
                }
            }

            Assert.That(open.Values, Is.All.Zero, "unbalanced B/E");
        }

        public static int ProcessPid(JsonElement root, string name) =>
            Events(root).Single(e => e.GetProperty("name").GetString() == "process_name" && e.GetProperty("args").GetProperty("name").GetString() == name)
                .GetProperty("pid").GetInt32();

        public static string? ThreadName(JsonElement root, int pid, int tid) =>
            Events(root).Single(e => e.GetProperty("name").GetString() == "thread_name" && e.GetProperty("pid").GetInt32() == pid && e.GetProperty("tid").GetInt32() == tid)
                .GetProperty("args").GetProperty("name").GetString();

        // The task's last sleep slice: where it was when the trace was written.
        public static JsonElement LastSleep(JsonElement root, int pid, int tid) =>
            Events(root).Where(e => e.GetProperty("ph").GetString() == "X" && e.GetProperty("pid").GetInt32() == pid && e.GetProperty("tid").GetInt32() == tid &&
                                    e.GetProperty("name").GetString() != "running")
                .MaxBy(e => e.GetProperty("ts").GetDouble());
    }
}
