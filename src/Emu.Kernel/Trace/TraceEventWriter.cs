// Writes a TraceSession as Chrome trace-event JSON (the JSON Object Format: {"traceEvents": [...],
// "displayTimeUnit": "ms", "otherData": {...}}), the format Perfetto and chrome://tracing open. It plays the part
// of the kernel's trace output (kernel/trace/trace_output.c): this is where entries become text.
//
// Model: three trace "processes". The first holds a track per task (tid = the emulated pid, named by its comm):
// alternating "running" and sleep slices, a sleep named by its state and what it waits on ("D: page 2 of
// inode 257 (__lock_page)") with the resource, its holder, the innermost kernel function and who woke it as
// args, and a flow arrow from the waker's track to where the task runs again. The second holds a track per
// workqueue with a slice per executed work item named by its function; the third a track per blk-mq hardware
// queue with a slice per request from submission to completion ("READ 4096 @ sector 8"). Work items of one
// workqueue and requests of one queue overlap, and a thread track must nest, so such a track spills into extra
// lanes ("btrfs-endio-write (2)") only while items overlap. Deadlocks are global instant events; hung-task
// reports are instants on the reported task's track. Every slice is a complete ("X") event, so no begin/end
// pair can be left unbalanced.
// Differs from what the tasks saw: a wait resource is described when the trace is written, so an extent range
// that was split or merged after the sleep shows its current bounds.
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Emu.Kernel;

internal sealed class TraceEventWriter
{
    private const int HostTid = 1; // the track of entries written by threads that are not emulated tasks

    private readonly TraceSession _session;
    private readonly TraceWriteOptions _options;
    private readonly Dictionary<object, string> _descriptions = new(ReferenceEqualityComparer.Instance);
    private readonly List<WorkSlice> _works = new();
    private readonly List<RqSlice> _rqs = new();
    private readonly List<EmuTask> _holders = new();
    private readonly Dictionary<EmuTask, List<Wakeup>> _wakeups = new(ReferenceEqualityComparer.Instance);
    private long _flowId;
    private Utf8JsonWriter _w = null!;
    private long _endNs;
    private long _events;
    private int _stillBlocked;

    internal TraceEventWriter(TraceSession session, TraceWriteOptions options)
    {
        _session = session;
        _options = options;
    }

    private int TasksPid => _options.PidBase;

    private int WorkqueuesPid => _options.PidBase + 1;

    private int BlockPid => _options.PidBase + 2;

    internal TraceWriteSummary Write(Stream stream)
    {
        _endNs = _session.StopNs ?? KernelTrace.NowNs();
        TraceRing[] rings = _session.Rings();
        var snapshots = new TraceRecord[rings.Length][];
        var ringLost = new long[rings.Length];
        for (int i = 0; i < rings.Length; i++)
        {
            snapshots[i] = rings[i].Snapshot(out ringLost[i]);
        }

        CollectWakeups(rings, snapshots);
        long lost = 0;
        long written = 0;
        var lostByTask = new List<(string Task, long Lost)>();
        // Relaxed escaping keeps "&root->ordered_extent_mutex" readable in the file; it is never embedded in HTML.
        using (_w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            _w.WriteStartObject();
            _w.WriteStartArray("traceEvents");
            WriteProcessName(TasksPid, _options.ProcessLabel, 0);
            WriteProcessName(WorkqueuesPid, _options.ProcessLabel + ": workqueues", 1);
            WriteProcessName(BlockPid, _options.ProcessLabel + ": blk-mq", 2);

            var named = new HashSet<int>();
            for (int i = 0; i < rings.Length; i++)
            {
                TraceRing ring = rings[i];
                lost += ringLost[i];
                written += ring.Written;
                if (ringLost[i] > 0)
                {
                    lostByTask.Add((TaskName(ring), ringLost[i]));
                }

                int tid = ring.Task?.Pid ?? HostTid;
                if (named.Add(tid))
                {
                    WriteThreadName(TasksPid, tid, ring.Task is null ? "host threads" : ring.Comm ?? ring.Task.Comm, tid);
                }

                WriteRing(ring, tid, snapshots[i]);
            }

            WriteWorkLanes();
            WriteRqLanes();
            _w.WriteEndArray();
            _w.WriteString("displayTimeUnit", "ms");
            _w.WriteStartObject("otherData");
            foreach (KeyValuePair<string, string> entry in _options.OtherData)
            {
                _w.WriteString(entry.Key, entry.Value);
            }

            _w.WriteString("clock", "monotonic (Stopwatch); ts in microseconds since tracing started");
            _w.WriteString("traceStartUtc", _session.StartedUtc.ToString("O", CultureInfo.InvariantCulture));
            _w.WriteNumber("durationMs", Math.Round((_endNs - _session.StartNs) / 1e6, 3));
            _w.WriteNumber("ringCapacity", _session.RingCapacity);
            _w.WriteNumber("rings", rings.Length);
            _w.WriteNumber("entriesWritten", written);
            _w.WriteNumber("droppedEvents", lost);
            _w.WriteStartObject("droppedEventsByTask");
            foreach ((string task, long n) in lostByTask)
            {
                _w.WriteNumber(task, n);
            }

            _w.WriteEndObject();
            _w.WriteNumber("stillBlocked", _stillBlocked);
            _w.WriteEndObject();
            _w.WriteEndObject();
        }

        return new TraceWriteSummary(_events, lost, _stillBlocked);
    }

    // One task's entries, oldest first: its running and sleep slices and instants; work items and requests are
    // collected for their own tracks.
    private void WriteRing(TraceRing ring, int tid, TraceRecord[] records)
    {
        long runStart = -1;
        long lastWokenNs = long.MinValue;
        int openSleep = -1;
        int openWork = -1;
        long lastNs = -1;
        for (int i = 0; i < records.Length; i++)
        {
            ref TraceRecord r = ref records[i];
            lastNs = Math.Max(lastNs, r.TimeNs);
            switch (r.Kind)
            {
                case TraceEventKind.SleepStart:
                    if (runStart >= 0)
                    {
                        WriteRunning(tid, runStart, r.TimeNs);
                    }

                    runStart = -1;
                    openSleep = i;
                    break;
                case TraceEventKind.SleepEnd:
                    if (openSleep >= 0)
                    {
                        // The wake-up may precede the sleep's own entry (it raced with schedule()), never the
                        // previous sleep's end.
                        Wakeup? waker = ring.Task is null ? null : FindWakeup(ring.Task, lastWokenNs, r.TimeNs);
                        WriteSleep(tid, ref records[openSleep], r.TimeNs, stillBlocked: false, waker);
                    }

                    openSleep = -1;
                    runStart = r.TimeNs;
                    lastWokenNs = r.TimeNs;
                    break;
                case TraceEventKind.WorkStart:
                    if (openWork >= 0)
                    {
                        _works[openWork].EndNs = r.TimeNs; // its end was lost: a work function does not nest
                    }

                    openWork = _works.Count;
                    _works.Add(new WorkSlice((Workqueue)r.Subject!, (string?)r.Other, ring, r.TimeNs));
                    break;
                case TraceEventKind.WorkEnd:
                    if (openWork >= 0)
                    {
                        _works[openWork].EndNs = r.TimeNs;
                    }

                    openWork = -1;
                    break;
                case TraceEventKind.RqComplete:
                    _rqs.Add(new RqSlice((string)r.Subject!, r.Queue, r.Op, r.Arg1, r.Arg2, r.Error, r.Arg0, r.TimeNs));
                    break;
                case TraceEventKind.Deadlock:
                    WriteDeadlock(tid, (DeadlockReport)r.Subject!, r.TimeNs);
                    break;
                case TraceEventKind.HungTask:
                    WriteHungTask((HungTaskReport)r.Subject!, r.TimeNs);
                    break;
            }
        }

        if (openSleep >= 0)
        {
            _stillBlocked++;
            WriteSleep(tid, ref records[openSleep], _endNs, stillBlocked: true, waker: null);
        }
        else if (runStart >= 0)
        {
            // A task that exited ran at least until its last entry; its exit itself is not traced.
            long end = ring.Task is { HasExited: true } ? lastNs : _endNs;
            if (end > runStart)
            {
                WriteRunning(tid, runStart, end);
            }
        }

        if (openWork >= 0)
        {
            _works[openWork].EndNs = _endNs;
            _works[openWork].StillRunning = true;
        }
    }

    private void WriteRunning(int tid, long startNs, long endNs)
    {
        BeginComplete("running", "sched", TasksPid, tid, startNs, endNs);
        _w.WriteEndObject();
    }

    private void WriteSleep(int tid, ref TraceRecord r, long endNs, bool stillBlocked, Wakeup? waker)
    {
        var resource = (IWaitResource?)r.Subject;
        string? description = resource is null ? null : Describe(resource);
        string state = StateLetter((TaskState)r.Arg2);
        string name = (description, r.Function) switch
        {
            (null, null) => state + ": sleep",
            (null, string f) => $"{state}: {f}",
            (string d, null) => $"{state}: {d}",
            (string d, string f) => $"{state}: {d} ({f})",
        };
        BeginComplete(name, "sched", TasksPid, tid, r.TimeNs, endNs);
        _w.WriteStartObject("args");
        _w.WriteString("state", state);
        if (description is not null)
        {
            _w.WriteString("resource", description);
        }

        // A sleep that has not ended names its holders as they are now (a completion's expected completer may be
        // known only after its waiters slept); an ended one, as they were when it began.
        EmuTask? holder = r.Other as EmuTask;
        long holders = r.Arg1;
        if (stillBlocked && resource is not null)
        {
            _holders.Clear();
            resource.AppendHolders(_holders);
            holder = _holders.Count > 0 ? _holders[0] : holder;
            holders = Math.Max(holders, _holders.Count);
        }

        if (holder is not null)
        {
            _w.WriteString("holder", $"{holder.Comm}:{holder.Pid}");
            if (holders > 1)
            {
                _w.WriteNumber("holders", holders);
            }
        }

        if (r.Function is not null)
        {
            _w.WriteString("function", r.Function);
        }

        if (waker is { } by)
        {
            _w.WriteString("woken by", TaskName(by.Waker));
        }

        if (stillBlocked)
        {
            _w.WriteBoolean("still blocked", true);
        }

        _w.WriteEndObject();
        _w.WriteEndObject();
        if (waker is { } w)
        {
            WriteWakeupFlow(w, tid, endNs);
        }
    }

    // A flow arrow from the waker's track at try_to_wake_up() to the woken task's track where it runs again.
    private void WriteWakeupFlow(Wakeup waker, int tid, long runsAtNs)
    {
        long id = ++_flowId;
        BeginEvent("wakeup", "sched", "s", TasksPid, waker.Waker.Task?.Pid ?? HostTid, waker.TimeNs);
        _w.WriteNumber("id", id);
        _w.WriteEndObject();
        BeginEvent("wakeup", "sched", "f", TasksPid, tid, runsAtNs);
        _w.WriteNumber("id", id);
        _w.WriteString("bp", "e");
        _w.WriteEndObject();
    }

    // sched_wakeup entries by woken task, oldest first.
    private void CollectWakeups(TraceRing[] rings, TraceRecord[][] snapshots)
    {
        for (int i = 0; i < rings.Length; i++)
        {
            foreach (ref TraceRecord r in snapshots[i].AsSpan())
            {
                if (r.Kind != TraceEventKind.Wakeup)
                {
                    continue;
                }

                var task = (EmuTask)r.Subject!;
                if (!_wakeups.TryGetValue(task, out List<Wakeup>? list))
                {
                    list = new List<Wakeup>();
                    _wakeups.Add(task, list);
                }

                list.Add(new Wakeup(r.TimeNs, rings[i]));
            }
        }

        foreach (List<Wakeup> list in _wakeups.Values)
        {
            list.Sort(static (a, b) => a.TimeNs.CompareTo(b.TimeNs));
        }
    }

    // The last wake-up of task in (afterNs, atNs], or null (a timeout ended the sleep, or its entry was lost).
    private Wakeup? FindWakeup(EmuTask task, long afterNs, long atNs)
    {
        if (!_wakeups.TryGetValue(task, out List<Wakeup>? list))
        {
            return null;
        }

        int lo = 0;
        int hi = list.Count - 1;
        int found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (list[mid].TimeNs <= atNs)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found >= 0 && list[found].TimeNs > afterNs ? list[found] : null;
    }

    private void WriteDeadlock(int tid, DeadlockReport report, long timeNs)
    {
        BeginEvent($"deadlock: circular wait between {report.Cycle.Count} tasks", "detect", "i", TasksPid, tid, timeNs);
        _w.WriteString("s", "g");
        _w.WriteStartObject("args");
        _w.WriteStartArray("cycle");
        foreach (DeadlockEdge e in report.Cycle)
        {
            _w.WriteStringValue($"{e.Waiter.Comm}:{e.Waiter.Pid} waits for {Describe(e.Resource)} held by {e.Holder.Comm}:{e.Holder.Pid}");
        }

        _w.WriteEndArray();
        WriteLines("report", report.Lines);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    private void WriteHungTask(HungTaskReport report, long timeNs)
    {
        BeginEvent($"hung task: {report.Comm}:{report.Pid}", "detect", "i", TasksPid, report.Pid, timeNs);
        _w.WriteString("s", "t");
        _w.WriteStartObject("args");
        _w.WriteNumber("blocked_for_ms", report.BlockedForMs);
        if (report.Workqueue is not null)
        {
            _w.WriteString("workqueue", report.Workqueue);
        }

        WriteLines("report", report.Lines);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    private void WriteLines(string property, IReadOnlyList<string> lines)
    {
        _w.WriteStartArray(property);
        foreach (string line in lines)
        {
            _w.WriteStringValue(line);
        }

        _w.WriteEndArray();
    }

    // A track per workqueue, in the order their first item ran; overlapping items go to extra lanes.
    private void WriteWorkLanes()
    {
        var groups = new List<List<WorkSlice>>();
        var byWq = new Dictionary<Workqueue, List<WorkSlice>>(ReferenceEqualityComparer.Instance);
        foreach (WorkSlice s in _works)
        {
            if (!byWq.TryGetValue(s.Wq, out List<WorkSlice>? list))
            {
                list = new List<WorkSlice>();
                byWq.Add(s.Wq, list);
                groups.Add(list);
            }

            list.Add(s);
        }

        int nextTid = 1;
        foreach (List<WorkSlice> list in groups)
        {
            list.Sort(static (a, b) => a.StartNs.CompareTo(b.StartNs));
            int[] lanes = AssignLanes(list, static s => (s.StartNs, s.EndNs), out int laneCount);
            int firstTid = nextTid;
            for (int lane = 0; lane < laneCount; lane++)
            {
                WriteThreadName(WorkqueuesPid, firstTid + lane, LaneName(list[0].Wq.Name, lane), firstTid + lane);
            }

            nextTid += laneCount;
            for (int i = 0; i < list.Count; i++)
            {
                WorkSlice s = list[i];
                BeginComplete(s.Func ?? "(work)", "workqueue", WorkqueuesPid, firstTid + lanes[i], s.StartNs, s.EndNs);
                _w.WriteStartObject("args");
                _w.WriteString("workqueue", s.Wq.Name);
                _w.WriteString("worker", TaskName(s.Worker));
                if (s.StillRunning)
                {
                    _w.WriteBoolean("still running", true);
                }

                _w.WriteEndObject();
                _w.WriteEndObject();
            }
        }
    }

    // A track per (disk, hardware queue), ordered by disk then queue; overlapping requests go to extra lanes.
    private void WriteRqLanes()
    {
        var byQueue = new SortedDictionary<(string Disk, int Queue), List<RqSlice>>();
        foreach (RqSlice rq in _rqs)
        {
            if (!byQueue.TryGetValue((rq.Disk, rq.Queue), out List<RqSlice>? list))
            {
                list = new List<RqSlice>();
                byQueue.Add((rq.Disk, rq.Queue), list);
            }

            list.Add(rq);
        }

        int nextTid = 1;
        foreach (KeyValuePair<(string Disk, int Queue), List<RqSlice>> entry in byQueue)
        {
            List<RqSlice> list = entry.Value;
            list.Sort(static (a, b) => a.SubmitNs.CompareTo(b.SubmitNs));
            int[] lanes = AssignLanes(list, static r => (r.SubmitNs, r.CompleteNs), out int laneCount);
            int firstTid = nextTid;
            string track = $"{entry.Key.Disk} hctx {entry.Key.Queue}";
            for (int lane = 0; lane < laneCount; lane++)
            {
                WriteThreadName(BlockPid, firstTid + lane, LaneName(track, lane), firstTid + lane);
            }

            nextTid += laneCount;
            for (int i = 0; i < list.Count; i++)
            {
                RqSlice rq = list[i];
                BeginComplete(
                    string.Create(CultureInfo.InvariantCulture, $"{OpName(rq.Op)} {rq.Bytes} @ sector {rq.Sector}"),
                    "block", BlockPid, firstTid + lanes[i], rq.SubmitNs, rq.CompleteNs);
                _w.WriteStartObject("args");
                _w.WriteString("op", OpName(rq.Op));
                _w.WriteNumber("sector", rq.Sector);
                _w.WriteNumber("bytes", rq.Bytes);
                if (rq.Error != 0)
                {
                    _w.WriteNumber("error", rq.Error);
                }

                _w.WriteEndObject();
                _w.WriteEndObject();
            }
        }
    }

    // Greedy interval partitioning over items sorted by start: each goes to the first lane free at its start.
    private static int[] AssignLanes<T>(List<T> sorted, Func<T, (long Start, long End)> span, out int laneCount)
    {
        var laneEnds = new List<long>();
        var lanes = new int[sorted.Count];
        for (int i = 0; i < sorted.Count; i++)
        {
            (long start, long end) = span(sorted[i]);
            int lane = laneEnds.FindIndex(e => e <= start);
            if (lane < 0)
            {
                lane = laneEnds.Count;
                laneEnds.Add(end);
            }
            else
            {
                laneEnds[lane] = end;
            }

            lanes[i] = lane;
        }

        laneCount = laneEnds.Count;
        return lanes;
    }

    private static string LaneName(string track, int lane) =>
        lane == 0 ? track : string.Create(CultureInfo.InvariantCulture, $"{track} ({lane + 1})");

    private void BeginComplete(string name, string category, int pid, int tid, long startNs, long endNs)
    {
        BeginEvent(name, category, "X", pid, tid, startNs);
        _w.WriteNumber("dur", Math.Round(Math.Max(0, endNs - Math.Max(startNs, _session.StartNs)) / 1e3, 3));
    }

    private void BeginEvent(string name, string category, string phase, int pid, int tid, long timeNs)
    {
        _events++;
        _w.WriteStartObject();
        _w.WriteString("name", name);
        _w.WriteString("cat", category);
        _w.WriteString("ph", phase);
        _w.WriteNumber("ts", Math.Round(Math.Max(0, timeNs - _session.StartNs) / 1e3, 3));
        _w.WriteNumber("pid", pid);
        _w.WriteNumber("tid", tid);
    }

    private void WriteProcessName(int pid, string name, int sortIndex)
    {
        WriteMetadata("process_name", pid, 0, "name", name);
        BeginEvent("process_sort_index", "__metadata", "M", pid, 0, _session.StartNs);
        _w.WriteStartObject("args");
        _w.WriteNumber("sort_index", sortIndex);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    private void WriteThreadName(int pid, int tid, string name, int sortIndex)
    {
        WriteMetadata("thread_name", pid, tid, "name", name);
        BeginEvent("thread_sort_index", "__metadata", "M", pid, tid, _session.StartNs);
        _w.WriteStartObject("args");
        _w.WriteNumber("sort_index", sortIndex);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    private void WriteMetadata(string name, int pid, int tid, string key, string value)
    {
        BeginEvent(name, "__metadata", "M", pid, tid, _session.StartNs);
        _w.WriteStartObject("args");
        _w.WriteString(key, value);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    private string Describe(IWaitResource resource)
    {
        if (!_descriptions.TryGetValue(resource, out string? description))
        {
            description = resource.Describe();
            _descriptions.Add(resource, description);
        }

        return description;
    }

    private static string TaskName(TraceRing ring) =>
        ring.Task is null ? "host threads" : $"{ring.Comm ?? ring.Task.Comm}:{ring.Task.Pid}";

    // The letter `ps` and sched_switch's prev_state print.
    private static string StateLetter(TaskState state) => state switch
    {
        TaskState.Interruptible => "S",
        TaskState.Uninterruptible => "D",
        TaskState.Idle => "I",
        TaskState.Running => "R",
        _ => "?",
    };

    private static string OpName(byte op) => op switch
    {
        0 => "READ",
        1 => "WRITE",
        2 => "FLUSH",
        _ => "OP" + op.ToString(CultureInfo.InvariantCulture),
    };

    private sealed class WorkSlice(Workqueue wq, string? func, TraceRing worker, long startNs)
    {
        public Workqueue Wq { get; } = wq;

        public string? Func { get; } = func;

        public TraceRing Worker { get; } = worker;

        public long StartNs { get; } = startNs;

        public long EndNs { get; set; } = startNs;

        public bool StillRunning { get; set; }
    }

    private readonly record struct Wakeup(long TimeNs, TraceRing Waker);

    private readonly record struct RqSlice(string Disk, int Queue, byte Op, long Sector, int Bytes, int Error, long SubmitNs, long CompleteNs);
}
