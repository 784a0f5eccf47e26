// Mirrors: kernel/sched/core.c (v4.4) sched_show_task(), kernel/workqueue.c print_worker_info() and the
// x86 show_stack() call trace: how the kernel prints one task in hung-task reports and sysrq dumps.
//
// Model: the state line "%-15.15s %c" + "%5lu %5d %6d 0x%08lx" (comm, state letter, free stack, pid, parent
// pid, thread_info flags), the "Workqueue: NAME FUNC" line for workqueue workers, then "Call Trace:" and the
// task's shadow stack, innermost first.
// Differs: no addresses anywhere. The saved PC after the state letter, the raw stack words and the
// "[<ip>] func+off/size" of each frame are left out; frames print as " func". Emu has no stacks to measure and
// no thread_info flags, so free stack prints 0 (the kernel's value without CONFIG_DEBUG_STACK_USAGE) and the
// flags 0x00000000 (no TIF_* work pending, as for any sleeping task).
namespace Emu.Kernel;

/// <summary>Formats a task the way the kernel's sched_show_task() prints it.</summary>
public static class TaskDump
{
    private const string StatNam = "RSDTtXZxKWP"; // TASK_STATE_TO_CHAR_STR

    /// <summary>The state letter of ps and sched_show_task: R, S, D, ... (stat_nam[__ffs(state) + 1]).</summary>
    public static char TaskStateChar(TaskState state)
    {
        int s = (int)state;
        int index = s == 0 ? 0 : System.Numerics.BitOperations.TrailingZeroCount(s) + 1;
        return index < StatNam.Length ? StatNam[index] : '?';
    }

    /// <summary>
    /// sched_show_task(): appends the state line, the "Workqueue:" line of a workqueue worker running a work
    /// item, "Call Trace:" and one line per shadow-stack frame, innermost first.
    /// </summary>
    public static void SchedShowTask(EmuTask task, List<string> lines)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(lines);
        char state = TaskStateChar(task.State);
        const int free = 0;
        const uint threadInfoFlags = 0;
        lines.Add(state == 'R'
            ? $"{task.Comm,-15} R  running task    {free,5} {task.Pid,5} {task.ParentPid,6} 0x{threadInfoFlags:x8}"
            : $"{task.Comm,-15} {state} {free,5} {task.Pid,5} {task.ParentPid,6} 0x{threadInfoFlags:x8}");

        string? workqueue = PrintWorkerInfo(task);
        if (workqueue is not null)
        {
            lines.Add("Workqueue: " + workqueue);
        }

        lines.Add("Call Trace:");
        foreach (string frame in task.Frames)
        {
            lines.Add(" " + frame);
        }
    }

    /// <summary>
    /// print_worker_info(): what follows "Workqueue: " for a workqueue worker (<see cref="TaskFlags.WqWorker"/>)
    /// running a work item, e.g. "btrfs-flush_delalloc btrfs_flush_delalloc_helper"; null otherwise.
    /// </summary>
    public static string? PrintWorkerInfo(EmuTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return (task.Flags & TaskFlags.WqWorker) != 0 ? task.WorkerHooks?.WorkerInfo(task) : null;
    }
}
