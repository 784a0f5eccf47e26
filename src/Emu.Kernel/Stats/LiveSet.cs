// The live objects a meter's observable instruments walk when a listener collects: registered as they are made,
// removed as they go away, and copied out under a lock so that collection never runs against a changing list.
namespace Emu.Kernel.Stats;

/// <summary>A thread-safe set of the live instances a meter reports on.</summary>
public sealed class LiveSet<T>
    where T : class
{
    private readonly Lock _lock = new();
    private readonly List<T> _items = []; // L: _lock

    /// <summary>Starts reporting on <paramref name="item"/>.</summary>
    public void Add(T item)
    {
        lock (_lock)
        {
            _items.Add(item);
        }
    }

    /// <summary>Stops reporting on <paramref name="item"/>.</summary>
    public void Remove(T item)
    {
        lock (_lock)
        {
            _items.Remove(item);
        }
    }

    /// <summary>The instances live now.</summary>
    public T[] Snapshot()
    {
        lock (_lock)
        {
            return [.. _items];
        }
    }
}
