// Mirrors: kernel/locking/rwsem.c and rwsem-xadd.c (v4.4): down_read, down_write, up_read, up_write,
// down_read_trylock, down_write_trylock.
//
// Model: a reader count and a writer under a small lock, and one wait queue. A reader gets in when there is no
// writer and no writer waiting (as in the kernel, a queued writer blocks new readers, so a task that takes the
// read side twice can deadlock behind a writer); a writer gets in when there are neither readers nor a writer.
// Releases wake every waiter, which re-check. Readers and the writer are recorded for the wait-for graph and
// in each holder's held locks.
// Differs: no spinning on the owner and no reader batching; wake-ups are wake-all rather than the kernel's
// front-of-queue grant.
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>struct rw_semaphore.</summary>
public sealed class RwSemaphore : IWaitResource
{
    private readonly Lock _lock = new();                 // sem->wait_lock
    private readonly WaitQueueHead _wait;               // I
    private readonly List<EmuTask> _readerTasks = new(); // L: _lock; readers that are emulated tasks
    private int _readers;                               // L: _lock
    private bool _writeLocked;                          // L: _lock
    private EmuTask? _writer;                           // L: _lock
    private int _waitingWriters;                        // L: _lock

    /// <summary>init_rwsem().</summary>
    /// <param name="className">Lockdep class, e.g. "&amp;fs_info->subvol_sem".</param>
    public RwSemaphore(string className)
    {
        Class = LockClass.Get(className);
        _wait = new WaitQueueHead(this);
    }

    /// <summary>The semaphore's lockdep class.</summary>
    public LockClass Class { get; }

    /// <summary>Number of current readers.</summary>
    public int Readers
    {
        get
        {
            lock (_lock)
            {
                return _readers;
            }
        }
    }

    /// <summary>The writer, or null when not write-held (or held by a host thread).</summary>
    public EmuTask? Writer
    {
        get
        {
            lock (_lock)
            {
                return _writer;
            }
        }
    }

    /// <summary>down_read(): takes the semaphore shared, sleeping while a writer holds or waits for it.</summary>
    public void DownRead()
    {
        EmuTask? task = EmuTask.Current;
        string? at = task?.TopFrame;
        using KFrame frame = KFunc.Enter("down_read");
        Sched.Point(SchedPoint.DownRead);
        if (!TryRead(task))
        {
            DownReadFailed();
        }

        Acquired(task, read: true, at);
    }

    /// <summary>down_read_trylock().</summary>
    public bool DownReadTrylock()
    {
        EmuTask? task = EmuTask.Current;
        if (!TryRead(task))
        {
            return false;
        }

        Acquired(task, read: true, task?.TopFrame);
        return true;
    }

    /// <summary>up_read(): releases a shared hold (the caller's, or any reader's for a host thread).</summary>
    public void UpRead()
    {
        EmuTask? released = null;
        bool wake;
        lock (_lock)
        {
            if (_readers == 0)
            {
                ThrowHelper.ThrowInvalidOperation($"up_read of {Class.Name} without a reader");
            }

            int i = _readerTasks.IndexOf(EmuTask.Current!);
            if (i < 0 && _readerTasks.Count == _readers)
            {
                i = 0; // up_read_non_owner(): release some reader's hold
            }

            if (i >= 0)
            {
                released = _readerTasks[i];
                _readerTasks.RemoveAt(i);
            }

            _readers--;
            wake = _readers == 0;
        }

        Sched.Point(SchedPoint.RwsemUp);
        if (released is not null)
        {
            HeldLocks.Released(released, this);
        }

        if (wake)
        {
            Wait.WakeUpAll(_wait);
        }
    }

    /// <summary>down_write(): takes the semaphore exclusively, sleeping while anyone holds it.</summary>
    public void DownWrite()
    {
        EmuTask? task = EmuTask.Current;
        string? at = task?.TopFrame;
        using KFrame frame = KFunc.Enter("down_write");
        Sched.Point(SchedPoint.DownWrite);
        if (!TryWrite(task, wasWaiting: false))
        {
            DownWriteFailed();
        }

        Acquired(task, read: false, at);
    }

    /// <summary>down_write_trylock().</summary>
    public bool DownWriteTrylock()
    {
        EmuTask? task = EmuTask.Current;
        if (!TryWrite(task, wasWaiting: false))
        {
            return false;
        }

        Acquired(task, read: false, task?.TopFrame);
        return true;
    }

    /// <summary>up_write(): releases the exclusive hold and wakes every waiter.</summary>
    public void UpWrite()
    {
        EmuTask? writer;
        lock (_lock)
        {
            if (!_writeLocked)
            {
                ThrowHelper.ThrowInvalidOperation($"up_write of {Class.Name} that is not write-held");
            }

            writer = _writer;
            _writer = null;
            _writeLocked = false;
        }

        Sched.Point(SchedPoint.RwsemUp);
        if (writer is not null)
        {
            HeldLocks.Released(writer, this);
        }

        Wait.WakeUpAll(_wait);
    }

    /// <inheritdoc />
    public string Describe() => Class.Name;

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
        lock (_lock)
        {
            if (_writer is not null)
            {
                holders.Add(_writer);
            }

            holders.AddRange(_readerTasks);
        }
    }

    private bool TryRead(EmuTask? task)
    {
        lock (_lock)
        {
            if (_writeLocked || _waitingWriters != 0)
            {
                return false;
            }

            _readers++;
            if (task is not null)
            {
                _readerTasks.Add(task);
            }

            return true;
        }
    }

    private bool TryWrite(EmuTask? task, bool wasWaiting)
    {
        lock (_lock)
        {
            if (_writeLocked || _readers != 0)
            {
                return false;
            }

            if (wasWaiting)
            {
                _waitingWriters--;
            }

            _writeLocked = true;
            _writer = task;
            return true;
        }
    }

    private void Acquired(EmuTask? task, bool read, string? at)
    {
        if (task is not null)
        {
            HeldLocks.Acquired(task, this, Class, read, at);
        }
    }

    // call_rwsem_down_read_failed -> rwsem_down_read_failed().
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void DownReadFailed()
    {
        EmuTask task = Wait.CurrentTask();
        using KFrame outer = task.Enter("call_rwsem_down_read_failed");
        using KFrame inner = task.Enter("rwsem_down_read_failed");
        WaitQueueEntry entry = task.WaitEntry;
        while (true)
        {
            Wait.PrepareToWait(_wait, entry, TaskState.Uninterruptible, this);
            if (TryRead(task))
            {
                break;
            }

            Sched.Schedule();
        }

        Wait.FinishWait(_wait, entry);
    }

    // call_rwsem_down_write_failed -> rwsem_down_write_failed().
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void DownWriteFailed()
    {
        EmuTask task = Wait.CurrentTask();
        using KFrame outer = task.Enter("call_rwsem_down_write_failed");
        using KFrame inner = task.Enter("rwsem_down_write_failed");
        lock (_lock)
        {
            _waitingWriters++;
        }

        WaitQueueEntry entry = task.WaitEntry;
        while (true)
        {
            Wait.PrepareToWait(_wait, entry, TaskState.Uninterruptible, this);
            if (TryWrite(task, wasWaiting: true))
            {
                break;
            }

            Sched.Schedule();
        }

        Wait.FinishWait(_wait, entry);
    }
}
