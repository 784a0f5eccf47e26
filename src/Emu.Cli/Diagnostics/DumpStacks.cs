// `emu diagnose --stacks DUMP`: for every emulated task blocked in a dump (TASK_UNINTERRUPTIBLE, the state
// khungtaskd reports), its emulated kernel call trace beside the managed stack of the thread running it - the
// two views of one hang. Nothing runs in the dumped process: the tasks are EmuTask objects read from the dump's
// heap with ClrMD (their comm, pid, state and shadow stack fields), matched to the dump's threads by the managed
// thread id of the Thread each task started.
// Differs from `dotnet-dump analyze` + clrstack: tasks are named as the kernel would (comm:pid, state letter),
// and only the blocked ones are shown. Adopted tasks (host threads that became tasks) have no Thread of their
// own to match; they are listed without a managed stack.
using System.Runtime.InteropServices;
using Emu.Kernel;
using Microsoft.Diagnostics.Runtime;

namespace Emu.Cli.Diagnostics;

/// <summary>One emulated task read from a dump.</summary>
/// <param name="Comm">task_struct->comm.</param>
/// <param name="Pid">Its emulated pid.</param>
/// <param name="State">Its state when the dump was taken.</param>
/// <param name="KernelFrames">Its shadow stack, innermost first.</param>
/// <param name="OsThreadId">The OS thread running it, or 0 when none was matched.</param>
/// <param name="ManagedFrames">The top managed frames of that thread, innermost first.</param>
internal sealed record DumpedTask(string Comm, int Pid, TaskState State, IReadOnlyList<string> KernelFrames, uint OsThreadId, IReadOnlyList<string> ManagedFrames);

/// <summary>Reads the emulated tasks of a dump.</summary>
internal static class DumpStacks
{
    /// <summary>Managed frames printed per task.</summary>
    public const int MaxManagedFrames = 16;

    private const string EmuTaskType = "Emu.Kernel.EmuTask";

    /// <summary>Every emulated task in the dump, by pid.</summary>
    /// <exception cref="UsageException">The file is not a dump of a .NET process.</exception>
    public static List<DumpedTask> Read(string dumpPath)
    {
        using DataTarget target = Open(dumpPath);
        if (target.ClrVersions.Length == 0)
        {
            throw new UsageException($"{dumpPath} holds no .NET runtime; --stacks needs a dump of an emu process (emu diagnose PID --dump PATH)");
        }

        // The runtime reading the dump is the one that wrote it (the same installation), so its own DAC fits;
        // a minor version mismatch is tolerated rather than refused.
        string dac = Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), OperatingSystem.IsWindows() ? "mscordaccore.dll" : "libmscordaccore.so");
        using ClrRuntime runtime = File.Exists(dac) ? target.ClrVersions[0].CreateRuntime(dac, ignoreMismatch: true) : target.ClrVersions[0].CreateRuntime();
        var threads = new Dictionary<int, ClrThread>();
        foreach (ClrThread thread in runtime.Threads)
        {
            threads[thread.ManagedThreadId] = thread;
        }

        var tasks = new List<DumpedTask>();
        foreach (ClrObject obj in runtime.Heap.EnumerateObjects())
        {
            if (obj.Type?.Name != EmuTaskType)
            {
                continue;
            }

            int state = obj.ReadField<int>("_state");
            if (state == (int)TaskState.Dead)
            {
                continue;
            }

            ClrThread? thread = null;
            ClrObject managed = obj.ReadObjectField("_thread");
            if (!managed.IsNull && threads.TryGetValue(managed.ReadField<int>("_managedThreadId"), out ClrThread? t))
            {
                thread = t;
            }

            tasks.Add(new DumpedTask(
                obj.ReadStringField("_comm") ?? "?",
                obj.ReadField<int>("<Pid>k__BackingField"),
                (TaskState)state,
                KernelFrames(obj),
                thread?.OSThreadId ?? 0,
                thread is null ? [] : ManagedFrames(thread)));
        }

        tasks.Sort(static (a, b) => a.Pid.CompareTo(b.Pid));
        return tasks;
    }

    /// <summary>Prints the blocked tasks: "comm:pid (D) os tid N", then the kernel and the managed frames.</summary>
    /// <returns>How many tasks were printed.</returns>
    public static int Write(TextWriter o, IReadOnlyList<DumpedTask> tasks)
    {
        int printed = 0;
        foreach (DumpedTask task in tasks)
        {
            if (task.State != TaskState.Uninterruptible)
            {
                continue;
            }

            printed++;
            o.WriteLine($"{task.Comm}:{task.Pid} ({TaskDump.TaskStateChar(task.State)}) os tid {(task.OsThreadId != 0 ? task.OsThreadId.ToString() : "? (adopted host thread)")}");
            o.WriteLine("  kernel:");
            foreach (string frame in task.KernelFrames)
            {
                o.WriteLine("    " + frame);
            }

            o.WriteLine("  managed:");
            foreach (string frame in task.ManagedFrames)
            {
                o.WriteLine("    " + frame);
            }
        }

        return printed;
    }

    private static DataTarget Open(string dumpPath)
    {
        try
        {
            return DataTarget.LoadDump(dumpPath);
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or IOException or ClrDiagnosticsException)
        {
            throw new UsageException($"{dumpPath} is not a dump ClrMD can read ({e.Message.ReplaceLineEndings(" ")}); write one with emu diagnose PID --dump PATH");
        }
    }

    // The shadow stack as EmuTask.Frames reads it: _frames[0.._depth), innermost last in the array.
    private static string[] KernelFrames(ClrObject task)
    {
        int depth = Math.Min(task.ReadField<int>("_depth"), EmuTask.MaxFrames);
        ClrObject array = task.ReadObjectField("_frames");
        if (array.IsNull || depth <= 0)
        {
            return [];
        }

        ClrArray frames = array.AsArray();
        depth = Math.Min(depth, frames.Length);
        var result = new string[depth];
        for (int i = 0; i < depth; i++)
        {
            ClrObject name = frames.GetObjectValue(depth - 1 - i);
            result[i] = name.IsNull ? "?" : name.AsString() ?? "?";
        }

        return result;
    }

    private static List<string> ManagedFrames(ClrThread thread)
    {
        var frames = new List<string>();
        foreach (ClrStackFrame frame in thread.EnumerateStackTrace())
        {
            string? text = frame.Method is { } method ? method.Signature ?? method.Name : frame.FrameName is { } name ? $"[{name}]" : null;

            // A P/Invoke shows twice, as its IL stub and as the method: once is enough.
            if (text is not null && (frames.Count == 0 || frames[^1] != text))
            {
                frames.Add(text);
            }

            if (frames.Count == MaxManagedFrames)
            {
                break;
            }
        }

        return frames;
    }
}
