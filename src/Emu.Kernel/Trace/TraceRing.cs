// Mirrors: kernel/trace/ring_buffer.c (v4.4) in overwrite mode, the default of the ftrace ring buffer: one
// buffer per writer, fixed-size entries, and when the buffer is full the oldest entries are overwritten and
// counted as lost ("entries-in-buffer/entries-written" in the trace header).
//
// Model: a ring belongs to one thread (one emulated task, or one host thread), so writing needs no lock and no
// atomic read-modify-write: store the entry, then publish the new head with a release store. A ring starts small
// and doubles until it reaches its capacity, then wraps. A reader on another
// thread copies the ring and re-reads the head afterwards; entries the writer may have overwritten meanwhile are
// discarded and counted as lost, so a snapshot is consistent without stopping writers. The slot after the head
// may be half-written at any time, so a ring of Capacity slots yields at most its newest Capacity - 1 entries.
// Differs: the kernel buffer is per CPU and made of pages; Emu's is per task (a task is one thread) and one array.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu.Kernel;

/// <summary>What a trace entry records: the tracepoint that wrote it.</summary>
internal enum TraceEventKind : byte
{
    /// <summary>The task blocks in schedule() (sched_switch with prev_state != TASK_RUNNING).</summary>
    SleepStart = 1,

    /// <summary>The task runs again after a sleep (sched_switch back to it).</summary>
    SleepEnd,

    /// <summary>The writing thread woke a task (sched_wakeup); the entry names the woken task.</summary>
    Wakeup,

    /// <summary>A worker starts a work function. workqueue_execute_start.</summary>
    WorkStart,

    /// <summary>The work function returned. workqueue_execute_end.</summary>
    WorkEnd,

    /// <summary>A request completed; it carries its submission time. block_rq_complete.</summary>
    RqComplete,

    /// <summary>The wait-for graph found a cycle (Emu's own; lockdep has no tracepoint for this).</summary>
    Deadlock,

    /// <summary>khungtaskd reported a task (the kernel prints it; Emu also traces it).</summary>
    HungTask,
}

/// <summary>
/// One fixed-size trace entry. Names are not formatted here: the entry keeps references (the wait resource, the
/// workqueue, the report) and the writer resolves them when the trace is written.
/// </summary>
[StructLayout(LayoutKind.Auto)]
internal struct TraceRecord
{
    internal long TimeNs;         // KernelTrace.NowNs() when the entry was written
    internal object? Subject;     // SleepStart: IWaitResource; Wakeup: the woken EmuTask; WorkStart: Workqueue; RqComplete: disk name; reports: the report
    internal object? Other;       // SleepStart: the first holder (EmuTask); WorkStart: the function name
    internal string? Function;    // SleepStart: innermost shadow-stack function that is not the sleeping machinery
    internal long Arg0;           // RqComplete: submission time (ns)
    internal long Arg1;           // RqComplete: first sector; SleepStart: number of holders
    internal int Arg2;            // RqComplete: bytes; SleepStart: TaskState
    internal int Error;           // RqComplete: -errno or 0
    internal short Queue;         // RqComplete: hardware queue number
    internal byte Op;             // RqComplete: REQ_OP_* (0 read, 1 write, 2 flush)
    internal TraceEventKind Kind;
}

/// <summary>A single-writer ring of trace entries that overwrites its oldest entries when full.</summary>
internal sealed class TraceRing
{
    private const int InitialSlots = 256;

    private readonly int _capacity; // I: the most slots the ring grows to, a power of two
    private TraceRecord[] _records; // written by the owning thread only (release), before a head that needs it
    private long _head;             // written by the owning thread only (release); read by the writer

    internal TraceRing(TraceSession session, EmuTask? task, int capacity)
    {
        Session = session;
        Task = task;
        Comm = task?.Comm;
        _capacity = capacity;
        _records = new TraceRecord[Math.Min(capacity, InitialSlots)];
    }

    /// <summary>The session the ring records for. I.</summary>
    internal TraceSession Session { get; }

    /// <summary>The task whose thread writes the ring, or null for a host thread. I.</summary>
    internal EmuTask? Task { get; }

    /// <summary>The task's comm when its first entry was written (a dying kworker renames itself). I.</summary>
    internal string? Comm { get; }

    /// <summary>Entries ever written, including overwritten ones.</summary>
    internal long Written => Volatile.Read(ref _head);

    /// <summary>The next entry to fill; call <see cref="Commit"/> once it is filled. Owning thread only.</summary>
    internal ref TraceRecord Reserve()
    {
        TraceRecord[] records = _records;
        long head = _head;
        if (head == records.Length && records.Length < _capacity)
        {
            records = Grow(records);
        }

        return ref records[head & (records.Length - 1)];
    }

    /// <summary>Publishes the entry returned by <see cref="Reserve"/>. Owning thread only.</summary>
    internal void Commit() => Volatile.Write(ref _head, _head + 1);

    /// <summary>
    /// Copies the entries still in the ring, oldest first, from any thread. <paramref name="lost"/> is the number
    /// of entries written but not returned (overwritten before or during the copy).
    /// </summary>
    internal TraceRecord[] Snapshot(out long lost)
    {
        long head = Volatile.Read(ref _head);
        TraceRecord[] records = Volatile.Read(ref _records); // read after the head: at least the array it was written to
        int length = records.Length;
        long first = Math.Max(0, head - length);
        var copy = new TraceRecord[head - first];
        for (long i = first; i < head; i++)
        {
            copy[i - first] = records[i & (length - 1)];
        }

        // Only a ring at full size wraps: the writer may then be filling entry `after` (not yet published), which
        // overwrites entry after - length. A smaller ring grows instead of overwriting.
        long after = Volatile.Read(ref _head);
        long valid = length < _capacity ? first : Math.Min(head, Math.Max(first, after + 1 - length));
        lost = valid;
        return valid == first ? copy : copy[(int)(valid - first)..];
    }

    // Doubles a ring that has not wrapped yet (entry i is in slot i), so a quiet task costs a few KiB and only a
    // busy one its full capacity: one allocation per doubling, never one per entry.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private TraceRecord[] Grow(TraceRecord[] records)
    {
        var bigger = new TraceRecord[Math.Min(records.Length * 2, _capacity)];
        records.CopyTo(bigger, 0);
        Volatile.Write(ref _records, bigger);
        return bigger;
    }
}
