// A sleep observer for tests: records every (task, resource) sleep it sees, so a test can wait until a task has
// really gone to sleep on a resource. Installed after a detector, it also tells the test that the detector has
// finished with that sleep (observers run in the order they were added).
using Emu.Kernel;

namespace Emu.Kernel.Tests;

internal sealed class SleepProbe : ISleepObserver
{
    private readonly Lock _lock = new();
    private readonly List<(EmuTask Task, IWaitResource? On)> _sleeps = new(); // L: _lock
    private readonly List<EmuTask> _wakes = new();                            // L: _lock

    public int StartedBy(EmuTask task)
    {
        lock (_lock)
        {
            return _sleeps.Count(s => s.Task == task);
        }
    }

    public int EndedBy(EmuTask task)
    {
        lock (_lock)
        {
            return _wakes.Count(t => t == task);
        }
    }

    public void SleepStarted(EmuTask task)
    {
        lock (_lock)
        {
            _sleeps.Add((task, task.WaitingOn));
        }
    }

    public void SleepEnded(EmuTask task)
    {
        lock (_lock)
        {
            _wakes.Add(task);
        }
    }

    public bool Saw(EmuTask task, IWaitResource resource)
    {
        lock (_lock)
        {
            return _sleeps.Exists(s => s.Task == task && s.On == resource);
        }
    }
}
