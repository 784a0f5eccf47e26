// What a sleeping task waits for and who can end that wait: the vertices of Emu's wait-for graph.
// The kernel keeps nothing like this for page locks, extent ranges or completions (lockdep never saw the
// ade770294df2 deadlock); Emu records it on every sleep.
namespace Emu.Kernel;

/// <summary>Something a task can hold or wait for: a lock, a page lock, an extent range, a completion.</summary>
public interface IWaitResource
{
    /// <summary>Human-readable name for reports, e.g. "page 2 of inode 257" or "&amp;root->ordered_extent_mutex".</summary>
    string Describe();

    /// <summary>
    /// Appends the tasks that currently hold the resource, or are expected to release or complete it
    /// (mutex owner, rwsem writer or readers, page-lock owner, expected completer). Appends nothing when
    /// no task is known (e.g. I/O in flight).
    /// </summary>
    void AppendHolders(List<EmuTask> holders);
}

/// <summary>
/// A named wait with an optional owner, for wait_event() sleeps that are not on a lock, e.g.
/// "ordered extent [4096, 12287] of inode 257" owned by nobody until its I/O completes.
/// </summary>
public sealed class NamedWaitResource : IWaitResource
{
    private readonly string _description; // I
    private EmuTask? _owner;               // any task; read racily by reports

    /// <param name="description">What the wait is for, as reports should print it.</param>
    public NamedWaitResource(string description) => _description = description;

    /// <summary>The task expected to end the wait, if one is known.</summary>
    public EmuTask? Owner
    {
        get => Volatile.Read(ref _owner);
        set => Volatile.Write(ref _owner, value);
    }

    /// <inheritdoc />
    public string Describe() => _description;

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
        EmuTask? owner = Owner;
        if (owner is not null)
        {
            holders.Add(owner);
        }
    }
}
