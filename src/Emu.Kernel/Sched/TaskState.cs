// Mirrors: include/linux/sched.h (v4.4) task state values and task flags.
namespace Emu.Kernel;

/// <summary>
/// A task's scheduling state (task_struct->state). The values are the kernel's, so a state can be tested
/// against a wake mask (<see cref="Normal"/>) exactly as try_to_wake_up() does.
/// </summary>
public enum TaskState
{
    /// <summary>On a run queue (or running). TASK_RUNNING.</summary>
    Running = 0,

    /// <summary>Sleeping; a signal could wake it (Emu has no signals). TASK_INTERRUPTIBLE.</summary>
    Interruptible = 1,

    /// <summary>Sleeping; only the awaited event wakes it. What the hung-task detector reports. TASK_UNINTERRUPTIBLE.</summary>
    Uninterruptible = 2,

    /// <summary>Wake mask for ordinary wake-ups (interruptible and uninterruptible sleepers). TASK_NORMAL.</summary>
    Normal = Interruptible | Uninterruptible,

    /// <summary>The task body returned. TASK_DEAD.</summary>
    Dead = 64,

    /// <summary>Uninterruptible sleep that does not count as load and is not reported as hung. TASK_IDLE (TASK_UNINTERRUPTIBLE | TASK_NOLOAD).</summary>
    Idle = Uninterruptible | 1024,
}

/// <summary>Per-task flags (task_struct->flags).</summary>
[Flags]
public enum TaskFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>The task is exiting. PF_EXITING.</summary>
    Exiting = 0x00000004,

    /// <summary>The task is a workqueue worker: schedule() calls its <see cref="IWorkqueueWorkerHooks"/>. PF_WQ_WORKER.</summary>
    WqWorker = 0x00000020,

    /// <summary>Allocating memory to free memory. PF_MEMALLOC.</summary>
    Memalloc = 0x00000800,

    /// <summary>The freezer leaves this task alone. PF_NOFREEZE.</summary>
    NoFreeze = 0x00008000,

    /// <summary>A kernel thread (kworker, khungtaskd, flusher) rather than a user task. PF_KTHREAD.</summary>
    Kthread = 0x00200000,
}
