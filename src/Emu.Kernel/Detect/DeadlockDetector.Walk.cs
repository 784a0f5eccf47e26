// The chain walk of the wait-for graph, after rt_mutex_adjust_prio_chain() (kernel/locking/rtmutex.c, v4.4):
// from a task that is about to block, follow what it waits on to the tasks holding that, what they wait on, and
// so on, until the walk runs out of sleepers (no deadlock), comes back to a task already on the path (a cycle:
// -EDEADLK), or hits its depth bound (max_lock_depth).
// Unlike the rtmutex walk, a resource may have several holders (rwsem readers), so the walk is a depth-first
// search: each path entry keeps its holders in one shared list, in the order the search visits them.
// Everything is preallocated per thread, so a walk allocates nothing.
namespace Emu.Kernel;

public sealed partial class DeadlockDetector
{
    [ThreadStatic]
    private static Walk? t_walk;

    private static bool IsSleeping(EmuTask task)
    {
        TaskState state = task.State;
        return state != TaskState.Running && state != TaskState.Dead;
    }

    // One thread's walk state. Path entry d is Tasks[d], asleep on Resources[d] with switch count Switches[d];
    // its holders are _holders[_holderStart[d]..] up to the next entry's start, and _holderNext[d] is the next
    // one to visit. Tasks whose every path was explored without finding a cycle are in _done.
    private sealed class Walk
    {
        public readonly EmuTask?[] Tasks = new EmuTask?[MaxLockDepth];
        public readonly IWaitResource?[] Resources = new IWaitResource?[MaxLockDepth];
        public readonly long[] Switches = new long[MaxLockDepth];
        private readonly int[] _holderStart = new int[MaxLockDepth];
        private readonly int[] _holderNext = new int[MaxLockDepth];
        private readonly List<EmuTask> _holders = new(MaxLockDepth);
        private readonly List<EmuTask> _verifyHolders = new(4);
        private readonly EmuTask?[] _done = new EmuTask?[MaxTasksVisited];
        private int _doneCount;

        /// <summary>The last path entry (the task whose holder closed the cycle), valid after <see cref="Run"/> found one.</summary>
        public int Top { get; private set; } = -1;

        public static Walk ForThisThread() => t_walk ??= new Walk();

        // Returns i such that Tasks[i..Top] is a cycle (Tasks[Top] waits on a resource Tasks[i] holds), or -1.
        public int Run(EmuTask start)
        {
            if (!Push(start))
            {
                return -1;
            }

            int visited = 0;
            while (Top >= 0)
            {
                int d = Top;
                if (_holderNext[d] == _holders.Count)
                {
                    Pop();
                    continue;
                }

                EmuTask holder = _holders[_holderNext[d]++];
                int onPath = IndexOnPath(holder);
                if (onPath >= 0)
                {
                    return onPath;
                }

                if (IsDone(holder) || d + 1 == MaxLockDepth)
                {
                    continue;
                }

                if (++visited == MaxTasksVisited)
                {
                    return -1;
                }

                if (!Push(holder))
                {
                    MarkDone(holder);
                }
            }

            return -1;
        }

        // Re-reads every edge of the cycle Tasks[first..Top]: each task must still be in the same sleep (same
        // switch count, still sleeping, same resource) and the next task must still hold that resource. Holder
        // lists are read racily during the walk; a cycle that survives a second look after the first is real.
        public bool Verify(int first)
        {
            for (int k = first; k <= Top; k++)
            {
                EmuTask task = Tasks[k]!;
                IWaitResource resource = Resources[k]!;
                EmuTask next = k < Top ? Tasks[k + 1]! : Tasks[first]!;
                if (!IsSleeping(task) || task.WaitingOn != resource || task.Nvcsw != Switches[k])
                {
                    return false;
                }

                _verifyHolders.Clear();
                resource.AppendHolders(_verifyHolders);
                bool held = _verifyHolders.Contains(next);
                _verifyHolders.Clear();
                if (!held)
                {
                    return false;
                }
            }

            return true;
        }

        // Drops every reference the walk took, so a finished walk keeps no task or resource alive.
        public void Reset()
        {
            if (Top >= 0)
            {
                Array.Clear(Tasks, 0, Top + 1);
                Array.Clear(Resources, 0, Top + 1);
                Top = -1;
            }

            _holders.Clear();
            Array.Clear(_done, 0, _doneCount);
            _doneCount = 0;
        }

        private bool Push(EmuTask task)
        {
            IWaitResource? resource = task.WaitingOn;
            if (resource is null || !IsSleeping(task))
            {
                return false;
            }

            int d = ++Top;
            Tasks[d] = task;
            Resources[d] = resource;
            Switches[d] = task.Nvcsw;
            _holderStart[d] = _holders.Count;
            _holderNext[d] = _holders.Count;
            resource.AppendHolders(_holders);
            return true;
        }

        private void Pop()
        {
            int d = Top;
            MarkDone(Tasks[d]!);
            _holders.RemoveRange(_holderStart[d], _holders.Count - _holderStart[d]);
            Tasks[d] = null;
            Resources[d] = null;
            Top = d - 1;
        }

        private int IndexOnPath(EmuTask task)
        {
            for (int i = 0; i <= Top; i++)
            {
                if (Tasks[i] == task)
                {
                    return i;
                }
            }

            return -1;
        }

        private bool IsDone(EmuTask task)
        {
            for (int i = 0; i < _doneCount; i++)
            {
                if (_done[i] == task)
                {
                    return true;
                }
            }

            return false;
        }

        private void MarkDone(EmuTask task)
        {
            if (_doneCount < _done.Length)
            {
                _done[_doneCount++] = task;
            }
        }
    }
}
