// Several sleep observers behind schedule()'s single observer slot (Sched.AddSleepObserver): the deadlock
// detector, a test probe and whatever else watches sleeps. Immutable: adding or removing one builds a new set
// that Sched swaps in with compare-and-swap, so schedule() reads the slot once and calls a stable array.
namespace Emu.Kernel;

internal sealed class SleepObserverSet : ISleepObserver
{
    private readonly ISleepObserver[] _observers; // I

    private SleepObserverSet(ISleepObserver[] observers) => _observers = observers;

    public void SleepStarted(EmuTask task)
    {
        foreach (ISleepObserver o in _observers)
        {
            o.SleepStarted(task);
        }
    }

    public void SleepEnded(EmuTask task)
    {
        foreach (ISleepObserver o in _observers)
        {
            o.SleepEnded(task);
        }
    }

    // current plus added, flattened.
    internal static ISleepObserver With(ISleepObserver? current, ISleepObserver added) => current switch
    {
        null => added,
        SleepObserverSet set => new SleepObserverSet([.. set._observers, added]),
        _ => new SleepObserverSet([current, added]),
    };

    internal static bool Contains(ISleepObserver? current, ISleepObserver observer) => current switch
    {
        null => false,
        SleepObserverSet set => Array.IndexOf(set._observers, observer) >= 0,
        _ => ReferenceEquals(current, observer),
    };

    // current without one occurrence of removed; a set of one collapses to its member.
    internal static ISleepObserver? Without(ISleepObserver? current, ISleepObserver removed)
    {
        if (current is not SleepObserverSet set)
        {
            return ReferenceEquals(current, removed) ? null : current;
        }

        int i = Array.IndexOf(set._observers, removed);
        if (i < 0)
        {
            return current;
        }

        ISleepObserver[] rest = [.. set._observers[..i], .. set._observers[(i + 1)..]];
        return rest.Length switch
        {
            0 => null,
            1 => rest[0],
            _ => new SleepObserverSet(rest),
        };
    }
}
