namespace Emu.Interop;

/// <summary>Pinning of the calling OS thread (affinity.c): what emulated per-CPU kworkers and bound tasks use.</summary>
public static class Affinity
{
    /// <summary>Pins the calling thread to <paramref name="cpus"/> (pthread_setaffinity_np).</summary>
    /// <returns>0, or -errno: -EINVAL for an empty set or one naming no online CPU.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A CPU outside [0, <see cref="CpuSet.MaxCpus"/>).</exception>
    public static unsafe int PinCurrentThread(ReadOnlySpan<int> cpus)
    {
        emu_cpuset set = CpuSet.FromCpus(cpus);
        return EmuShim.emu_affinity_set_current(&set);
    }

    /// <summary>The CPUs the calling thread may run on, ascending (pthread_getaffinity_np).</summary>
    public static unsafe int[] GetCurrentThread()
    {
        emu_cpuset set;
        Errno.ThrowIfError(EmuShim.emu_affinity_get_current(&set), "emu_affinity_get_current");
        return set.ToArray();
    }

    /// <summary>The calling thread's kernel thread id (gettid), as /proc/PID/task and hung-task reports show it.</summary>
    public static unsafe int CurrentThreadId()
    {
        int tid;
        Errno.ThrowIfError(EmuShim.emu_thread_id(&tid), "emu_thread_id");
        return tid;
    }
}
