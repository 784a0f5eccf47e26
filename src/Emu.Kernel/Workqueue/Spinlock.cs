// Mirrors: include/linux/spinlock.h (v4.4) spinlock_t with spin_lock_irq / spin_unlock_irq, as kernel/workqueue.c
// uses them for pool->lock.
//
// Model: a word taken with one compare-and-swap and released with one store, held around list and counter
// updates, never across a sleep and never recursively. Every work item takes its pool's lock at least twice
// (queueing and starting it), so the uncontended path is what matters: it does no more than the kernel's.
// Differs: the kernel's queued spinlock is fair; here a contender backs off before retrying, so the holder may
// take the lock again first and run a batch (a cache line crossing CPUs costs more than a short critical
// section). The kernel's holder runs with irqs off and cannot be preempted; an OS thread can be, so a contender
// yields its CPU between tries, and after a few queues on a host lock: only the one at the head of that queue
// keeps trying while the others block, leaving the CPUs to the preempted holder. A struct, so that
// `lock (pool.Lock)`, which would take a Monitor instead, does not compile; debug builds record the owner for
// lockdep_assert_held() and catch recursion, which would deadlock as in the kernel.
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu.Kernel;

/// <summary>spinlock_t: a non-recursive lock for short critical sections that never sleep.</summary>
[StructLayout(LayoutKind.Explicit, Size = 2 * CacheLine)]
internal struct Spinlock
{
    private const int CacheLine = 64;
    private const int BackoffSpins = 1024;      // Thread.SpinWait iterations: about 43 us here (64: 3.5 us)
    private const int YieldsBeforeQueueing = 6;

    [FieldOffset(0)]
    private readonly Lock _contenders = new(); // contenders past the yields, in line behind the one still trying

    // Alone on its cache line: spinning contenders read it, and must not slow the holder's writes to the
    // fields around it (____cacheline_aligned_in_smp in the kernel's struct worker_pool).
    [FieldOffset(CacheLine)]
    private int _locked;                       // 1 while held
#if DEBUG
    [FieldOffset(CacheLine + sizeof(int))]
    private int _owner;                        // managed thread id of the holder, 0 when free
#endif

    public Spinlock()
    {
    }

    /// <summary>Whether the calling thread holds the lock (release builds: whether anyone does).</summary>
    public readonly bool IsHeldByCurrentThread =>
#if DEBUG
        Volatile.Read(in _owner) == Environment.CurrentManagedThreadId;
#else
        Volatile.Read(in _locked) != 0;
#endif

    /// <summary>spin_lock_irq().</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
#if DEBUG
        Debug.Assert(!IsHeldByCurrentThread, "spinlock recursion");
#endif
        if (Interlocked.CompareExchange(ref _locked, 1, 0) != 0)
        {
            EnterContended();
        }
#if DEBUG
        _owner = Environment.CurrentManagedThreadId;
#endif
    }

    /// <summary>spin_unlock_irq(). The store releases everything written under the lock.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
#if DEBUG
        Debug.Assert(IsHeldByCurrentThread, "spin_unlock of a lock not held");
        _owner = 0;
#endif
        Volatile.Write(ref _locked, 0);
    }

    /// <summary>Takes the lock until the returned scope is disposed: <c>using (pool.Lock.EnterScope()) { ... }</c>.</summary>
    [UnscopedRef]
    public Scope EnterScope()
    {
        Enter();
        return new Scope(ref this);
    }

    // A queuer and a worker on different CPUs take the lock every few hundred nanoseconds; a contender that
    // retried at once would win every other time, moving the lock's and the pool's cache lines across CPUs for
    // each item. So it backs off first, letting the holder run a batch, then yields its CPU between tries rather
    // than burn it: the holder, or another task, may be waiting for that CPU. The backoff is long because only a
    // long one lets the holder run a real batch: flooding an unbound workqueue with empty items, a queuer backing
    // off 3.5 us ran 3.7-3.9 M items/s, one backing off 43 us 5.2-5.8 M/s (`emu wq bench`, 2 CPUs), and the stress
    // mix, where the pool locks are seldom contended, ran no slower. Retrying at once (test-and-test-and-set
    // every spin) ran 1.5-1.9 M/s.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void EnterContended()
    {
        Thread.SpinWait(BackoffSpins);
        if (TryAcquire())
        {
            return;
        }

        for (int i = 0; i < YieldsBeforeQueueing; i++)
        {
            Thread.Yield();
            if (TryAcquire())
            {
                return;
            }
        }

        using (_contenders.EnterScope())
        {
            SpinWait spin = default;
            while (!TryAcquire())
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }

    // Test and test-and-set: spinning reads leave the cache line shared until the word is free.
    private bool TryAcquire() => Volatile.Read(ref _locked) == 0 && Interlocked.CompareExchange(ref _locked, 1, 0) == 0;

    /// <summary>The scope of <see cref="EnterScope"/>.</summary>
    public ref struct Scope
    {
        private ref Spinlock _lock;

        internal Scope(ref Spinlock spinlock) => _lock = ref spinlock;

        /// <summary>Releases the lock.</summary>
        public void Dispose() => _lock.Exit();
    }
}
