// Mirrors: include/linux/sched.h (v4.4) struct task_struct, kernel/kthread.c (kthread_run, kthread_stop,
// kthread_should_stop) and kernel/exit.c (do_exit's lock check).
//
// Model: an EmuTask is one dedicated OS thread with a kernel identity: comm, pid, parent pid, state, voluntary
// switch count, flags, preempt count (atomic/irq context), the locks it holds and a shadow stack of the kernel
// functions it is inside. EmuTask.Current is the task of the calling thread (the kernel's `current`). Host
// threads (tests, the CLI) become tasks for a while with Adopt. Every sleep of a task goes through
// Sched.Schedule, which parks on the task's own monitor (_park): the only raw blocking in emulated code.
// Differs: pids come from Emu's own counter (starting at 100, settable), not the OS; an exception escaping a
// task body is recorded, reported as a BUG and surfaced through Exception, instead of an oops.
using System.Diagnostics;
using Emu.Interop;

namespace Emu.Kernel;

/// <summary>An emulated kernel or user task (task_struct) running on a dedicated thread.</summary>
public sealed partial class EmuTask
{
    /// <summary>Longest comm including the terminator, as in the kernel; longer names are truncated. TASK_COMM_LEN.</summary>
    public const int TaskCommLen = 16;

    private static int s_nextPid = 100;

    [ThreadStatic]
    private static EmuTask? t_current;

    private readonly Action? _body;        // I: null for adopted tasks
    private readonly Thread? _thread;      // I: null for adopted tasks
    private readonly Completion _exited;   // I: completed when the body returns (vfork_done)
    private string _comm;                  // written by the task or before Start; read racily by reports
    private int _started;                  // Interlocked: Start runs once
    private volatile bool _shouldStop;     // kthread_stop() asked the task to return
    private Exception? _exception;         // written by the task before _exited completes
    private int[]? _allowedCpus;           // I: set before Start

    /// <summary>Creates a task that will run <paramref name="body"/> on its own thread once started.</summary>
    /// <param name="comm">Kernel-style name, e.g. "kworker/u4:1" or "fdm-stress"; truncated to 15 characters.</param>
    /// <param name="body">The task's function (threadfn); the task exits when it returns.</param>
    /// <param name="parentPid">Parent pid for reports; defaults to the creating task's pid, or 1 from a host thread.</param>
    public EmuTask(string comm, Action body, int? parentPid = null)
        : this(comm, parentPid)
    {
        _body = body ?? throw new ArgumentNullException(nameof(body));
        _thread = new Thread(ThreadMain) { IsBackground = true, Name = _comm };
    }

    private EmuTask(string comm, int? parentPid)
    {
        ArgumentException.ThrowIfNullOrEmpty(comm);
        _comm = TruncateComm(comm);
        Pid = Interlocked.Increment(ref s_nextPid) - 1;
        ParentPid = parentPid ?? t_current?.Pid ?? 1;
        _exited = new Completion("vfork_done");
        _exited.ExpectedCompleter = this;
        WaitEntry = new WaitQueueEntry(this);
    }

    /// <summary>The task of the calling thread (`current`), or null on a thread that is not an emulated task.</summary>
    public static EmuTask? Current => t_current;

    /// <summary>The task of the calling thread; throws on a thread that is not an emulated task.</summary>
    public static EmuTask CurrentOrThrow
    {
        get
        {
            EmuTask? t = t_current;
            if (t is null)
            {
                ThrowHelper.ThrowNotATask("EmuTask.CurrentOrThrow");
            }

            return t;
        }
    }

    /// <summary>The task's name (task_struct->comm).</summary>
    public string Comm => Volatile.Read(ref _comm);

    /// <summary>Emulated process id.</summary>
    public int Pid { get; }

    /// <summary>Emulated parent process id (kernel threads conventionally use 2, kthreadd).</summary>
    public int ParentPid { get; }

    /// <summary>task_struct->flags. Set before Start, or by the task itself.</summary>
    public TaskFlags Flags { get; set; }

    /// <summary>The workqueue's concurrency-management hooks, called by schedule() when <see cref="TaskFlags.WqWorker"/> is set.</summary>
    public IWorkqueueWorkerHooks? WorkerHooks { get; set; }

    /// <summary>
    /// task_struct->plug: the block layer's plug while the task holds one; schedule() flushes it. Set by the task
    /// itself.
    /// </summary>
    public ITaskPlug? Plug { get; set; }

    /// <summary>Opaque per-task data for the subsystem that owns the task (e.g. its struct worker; kthread_data()).</summary>
    public object? KthreadData { get; set; }

    /// <summary>The exception that escaped the task body, once it has exited; null after a normal return.</summary>
    public Exception? Exception => Volatile.Read(ref _exception);

    /// <summary>Whether the task body has returned (state <see cref="TaskState.Dead"/>).</summary>
    public bool HasExited => _exited.CompletionDone;

    /// <summary>Whether the task was adopted from a host thread rather than created with a body.</summary>
    public bool IsAdopted => _thread is null;

    /// <summary>kthread_should_stop(): <see cref="KthreadStop"/> was called for this task.</summary>
    public bool KthreadShouldStop => _shouldStop;

    /// <summary>
    /// The reusable wait-queue entry Emu's primitives use for this task's sleeps (DEFINE_WAIT); a task waits on
    /// one queue at a time, so code building its own wait loops on <see cref="Wait"/> may use it too.
    /// </summary>
    public WaitQueueEntry WaitEntry { get; }

    /// <summary>
    /// CPUs the task's thread is pinned to when it starts (set_cpus_allowed_ptr); null leaves it unpinned.
    /// Must be set before <see cref="Start"/>.
    /// </summary>
    public IReadOnlyList<int>? AllowedCpus
    {
        get => _allowedCpus;
        set
        {
            if (Volatile.Read(ref _started) != 0)
            {
                ThrowHelper.ThrowInvalidOperation("AllowedCpus must be set before Start.");
            }

            _allowedCpus = value?.ToArray();
        }
    }

    /// <summary>Makes the next created task get <paramref name="pid"/> (pid counter reset, e.g. for reproducible reports).</summary>
    public static void SetNextPid(int pid)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        Volatile.Write(ref s_nextPid, pid);
    }

    /// <summary>set_task_comm(): renames the task.</summary>
    public void SetComm(string comm)
    {
        ArgumentException.ThrowIfNullOrEmpty(comm);
        Volatile.Write(ref _comm, TruncateComm(comm));
    }

    /// <summary>wake_up_new_task(): starts the task's thread. A task starts once.</summary>
    public void Start()
    {
        if (_thread is null || Interlocked.Exchange(ref _started, 1) != 0)
        {
            ThrowHelper.ThrowInvalidOperation($"task {Comm}/{Pid} cannot be started (adopted or already started).");
        }

        TaskList.Add(this);
        _thread.Start();
    }

    /// <summary>Creates and starts a task (kthread_run).</summary>
    public static EmuTask Run(string comm, Action body, int? parentPid = null)
    {
        var task = new EmuTask(comm, body, parentPid);
        task.Start();
        return task;
    }

    /// <summary>
    /// Waits for the task to exit. From an emulated task the wait sleeps through schedule() (uninterruptible,
    /// on the task's exit completion); from a host thread it joins the OS thread.
    /// </summary>
    /// <returns>true if the task exited within the timeout.</returns>
    public bool Join(int timeoutMs = Timeout.Infinite)
    {
        if (_thread is null)
        {
            ThrowHelper.ThrowInvalidOperation("an adopted task cannot be joined; dispose its Adopt scope.");
        }

        EmuTask? caller = t_current;
        if (caller == this)
        {
            ThrowHelper.ThrowInvalidOperation("a task cannot join itself.");
        }

        if (caller is null)
        {
            return _thread.Join(timeoutMs);
        }

        if (timeoutMs == Timeout.Infinite)
        {
            _exited.WaitForCompletion();
            return true;
        }

        return _exited.WaitForCompletionTimeout(timeoutMs) != 0;
    }

    /// <summary>kthread_stop(): sets <see cref="KthreadShouldStop"/>, wakes the task and waits for it to exit.</summary>
    public void KthreadStop()
    {
        _shouldStop = true;
        Sched.WakeUpProcess(this);
        Join();
    }

    /// <summary>
    /// Makes the calling host thread an emulated task until the returned scope is disposed (on the same thread).
    /// </summary>
    public static AdoptedTask Adopt(string comm, int? parentPid = null)
    {
        if (t_current is not null)
        {
            ThrowHelper.ThrowInvalidOperation($"this thread already is task {t_current.Comm}/{t_current.Pid}.");
        }

        var task = new EmuTask(comm, parentPid);
        t_current = task;
        TaskList.Add(task);
        return new AdoptedTask(task);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Comm}/{Pid}";

    internal void ExitAdopted()
    {
        Debug.Assert(t_current == this, "an Adopt scope must be disposed on its own thread");
        DoExit();
        t_current = null;
    }

    private void ThreadMain()
    {
        t_current = this;
        try
        {
            int[]? cpus = _allowedCpus;
            if (cpus is not null)
            {
                PinSelf(cpus);
            }

            Sched.Point(SchedPoint.TaskStart);
            _body!();
        }
        catch (Exception e)
        {
            Volatile.Write(ref _exception, e);
            Klog.Bug($"BUG: unhandled exception in task {Comm}/{Pid}: {e.GetType().Name}: {e.Message}", null);
        }
        finally
        {
            DoExit();
            t_current = null;
        }
    }

    // do_exit(): report locks still held (debug_check_no_locks_held), then become TASK_DEAD and release joiners.
    private void DoExit()
    {
        Flags |= TaskFlags.Exiting;
        if (HeldLocks.Count(this) != 0)
        {
            Klog.Bug($"BUG: {Comm}/{Pid} still has locks held!", null);
            Klog.Printk(HeldLocks.Format(this));
        }

        Sched.Point(SchedPoint.TaskExit);
        Volatile.Write(ref _state, (int)TaskState.Dead);
        TaskList.Remove(this);
        _exited.CompleteAll();
    }

    // set_cpus_allowed_ptr() on itself. A refused CPU set is a warning, as in the kernel: the task runs unpinned.
    private void PinSelf(int[] cpus)
    {
        int rc = Affinity.PinCurrentThread(cpus);
        if (rc != 0)
        {
            Klog.Printk($"WARNING: {Comm}/{Pid}: cannot pin to CPUs {string.Join(',', cpus)}: error {rc}");
        }
    }

    private static string TruncateComm(string comm) =>
        comm.Length < TaskCommLen ? comm : comm[..(TaskCommLen - 1)];
}

/// <summary>The scope of <see cref="EmuTask.Adopt"/>: disposing it ends the task (on the adopting thread).</summary>
public sealed class AdoptedTask : IDisposable
{
    private int _disposed;

    internal AdoptedTask(EmuTask task) => Task = task;

    /// <summary>The adopted task.</summary>
    public EmuTask Task { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Task.ExitAdopted();
        }
    }
}
