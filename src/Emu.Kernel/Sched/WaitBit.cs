// Mirrors: kernel/sched/wait.c (v4.4) bit waits: bit_waitqueue, __wait_on_bit, __wait_on_bit_lock,
// wake_up_bit, bit_wait, bit_wait_io.
//
// Model: waiting for a bit in some object's flags word uses one of 256 shared wait queues picked by hashing
// (object, bit), as the kernel hashes (word address, bit); each entry carries its key, and a wake for a key
// wakes only entries with that key. Waiting for the bit to clear is non-exclusive (everyone sees it clear);
// waiting to take the bit as a lock is exclusive (one waiter per unlock). The waker clears the bit with a
// full barrier and then checks waitqueue_active before taking the queue lock.
// Differs: the key is (owner object, bit) rather than a word address, since managed objects move.
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

/// <summary>Sleeping on a bit in a flags word (wait_on_bit and friends).</summary>
public static class WaitBit
{
    private const int WaitTableBits = 8;
    private static readonly WaitQueueHead[] s_waitTable = CreateTable();

    /// <summary>bit_waitqueue(): the shared queue for waits on <paramref name="bit"/> of <paramref name="owner"/>'s word.</summary>
    public static WaitQueueHead BitWaitqueue(object owner, int bit)
    {
        // hash_long(): multiplicative hash of the identity hash and the bit, top WaitTableBits bits.
        ulong key = ((ulong)(uint)RuntimeHelpers.GetHashCode(owner) << 6) | (uint)bit;
        return s_waitTable[(int)((key * 0x9E3779B97F4A7C15UL) >> (64 - WaitTableBits))];
    }

    /// <summary>
    /// wake_up_bit(): wakes the waiters for a bit the caller has just changed with a full barrier (any
    /// <see cref="Bitops"/> write or Interlocked operation).
    /// </summary>
    public static void WakeUpBit(object owner, int bit)
    {
        WaitQueueHead wq = BitWaitqueue(owner, bit);
        if (!wq.Active)
        {
            return;
        }

        lock (wq.Lock)
        {
            wq.WakeUpLocked(TaskState.Normal, 1, owner, bit);
        }
    }

    /// <summary>wait_on_bit(): sleeps until the bit is clear.</summary>
    public static void WaitOnBit(object owner, ref long word, int bit, TaskState mode = TaskState.Uninterruptible, IWaitResource? resource = null)
    {
        if (!Bitops.TestBit(ref word, bit))
        {
            return;
        }

        using KFrame frame = KFunc.Enter("out_of_line_wait_on_bit");
        __WaitOnBit(owner, ref word, bit, mode, io: false, resource);
    }

    /// <summary>wait_on_bit_io(): as <see cref="WaitOnBit"/>, sleeping as I/O wait (bit_wait_io).</summary>
    public static void WaitOnBitIo(object owner, ref long word, int bit, TaskState mode = TaskState.Uninterruptible, IWaitResource? resource = null)
    {
        if (!Bitops.TestBit(ref word, bit))
        {
            return;
        }

        using KFrame frame = KFunc.Enter("out_of_line_wait_on_bit");
        __WaitOnBit(owner, ref word, bit, mode, io: true, resource);
    }

    /// <summary>wait_on_bit_lock(): takes the bit as a lock (test_and_set_bit), sleeping while another holder has it.</summary>
    public static void WaitOnBitLock(object owner, ref long word, int bit, TaskState mode = TaskState.Uninterruptible, IWaitResource? resource = null)
    {
        if (!Bitops.TestAndSetBit(ref word, bit))
        {
            return;
        }

        using KFrame frame = KFunc.Enter("out_of_line_wait_on_bit_lock");
        __WaitOnBitLock(owner, ref word, bit, mode, io: false, resource);
    }

    /// <summary>wait_on_bit_lock_io(): as <see cref="WaitOnBitLock"/>, sleeping as I/O wait (bit_wait_io).</summary>
    public static void WaitOnBitLockIo(object owner, ref long word, int bit, TaskState mode = TaskState.Uninterruptible, IWaitResource? resource = null)
    {
        if (!Bitops.TestAndSetBit(ref word, bit))
        {
            return;
        }

        using KFrame frame = KFunc.Enter("out_of_line_wait_on_bit_lock");
        __WaitOnBitLock(owner, ref word, bit, mode, io: true, resource);
    }

    // __wait_on_bit(): non-exclusive; returns once the bit is seen clear.
    internal static void __WaitOnBit(object owner, ref long word, int bit, TaskState mode, bool io, IWaitResource? resource)
    {
        EmuTask task = Wait.CurrentTask();
        using KFrame frame = task.Enter("__wait_on_bit");
        WaitQueueHead wq = BitWaitqueue(owner, bit);
        WaitQueueEntry entry = task.WaitEntry;
        do
        {
            Wait.Prepare(wq, entry, mode, exclusive: false, owner, bit, resource);
            if (Bitops.TestBit(ref word, bit))
            {
                BitWait(task, io);
            }
        }
        while (Bitops.TestBit(ref word, bit));

        Wait.FinishWait(wq, entry);
    }

    // __wait_on_bit_lock(): exclusive; returns with the bit set by this task.
    internal static void __WaitOnBitLock(object owner, ref long word, int bit, TaskState mode, bool io, IWaitResource? resource)
    {
        EmuTask task = Wait.CurrentTask();
        using KFrame frame = task.Enter("__wait_on_bit_lock");
        WaitQueueHead wq = BitWaitqueue(owner, bit);
        WaitQueueEntry entry = task.WaitEntry;
        do
        {
            Wait.Prepare(wq, entry, mode, exclusive: true, owner, bit, resource);
            if (Bitops.TestBit(ref word, bit))
            {
                BitWait(task, io);
            }
        }
        while (Bitops.TestAndSetBit(ref word, bit));

        Wait.FinishWait(wq, entry);
    }

    // bit_wait() / bit_wait_io(): the action that actually sleeps.
    private static void BitWait(EmuTask task, bool io)
    {
        if (io)
        {
            using KFrame frame = task.Enter("bit_wait_io");
            Sched.IoSchedule();
        }
        else
        {
            using KFrame frame = task.Enter("bit_wait");
            Sched.Schedule();
        }
    }

    private static WaitQueueHead[] CreateTable()
    {
        var table = new WaitQueueHead[1 << WaitTableBits];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = new WaitQueueHead();
        }

        return table;
    }
}
