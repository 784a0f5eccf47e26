// Mirrors: the task list walked by for_each_process_thread (kernel/fork.c, tasklist_lock).
// Model: every started or adopted task is registered until it exits, so khungtaskd can scan all live tasks.
namespace Emu.Kernel;

/// <summary>All live emulated tasks.</summary>
public static class TaskList
{
    private static readonly Lock s_lock = new();                 // tasklist_lock
    private static readonly Dictionary<int, EmuTask> s_tasks = new(); // L: s_lock

    /// <summary>Number of live tasks.</summary>
    public static int Count
    {
        get
        {
            lock (s_lock)
            {
                return s_tasks.Count;
            }
        }
    }

    /// <summary>A snapshot of every live task, in pid order.</summary>
    public static EmuTask[] Snapshot()
    {
        EmuTask[] tasks;
        lock (s_lock)
        {
            tasks = new EmuTask[s_tasks.Count];
            s_tasks.Values.CopyTo(tasks, 0);
        }

        Array.Sort(tasks, static (a, b) => a.Pid.CompareTo(b.Pid));
        return tasks;
    }

    /// <summary>find_task_by_vpid(): the live task with <paramref name="pid"/>.</summary>
    public static bool TryFind(int pid, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out EmuTask? task)
    {
        lock (s_lock)
        {
            return s_tasks.TryGetValue(pid, out task);
        }
    }

    internal static void Add(EmuTask task)
    {
        lock (s_lock)
        {
            s_tasks[task.Pid] = task;
        }
    }

    internal static void Remove(EmuTask task)
    {
        lock (s_lock)
        {
            s_tasks.Remove(task.Pid);
        }
    }
}
