// The data of a deadlock report (see DeadlockDetector): the cycle as edges in wait order, the victims blocked
// behind it, and the text printed to the kernel log.
namespace Emu.Kernel;

/// <summary>One edge of a wait-for cycle: <paramref name="Waiter"/> sleeps on <paramref name="Resource"/>, which <paramref name="Holder"/> holds (or is expected to complete).</summary>
public readonly record struct DeadlockEdge(EmuTask Waiter, IWaitResource Resource, EmuTask Holder);

/// <summary>
/// A task that is not in the cycle but cannot run until it is broken: it sleeps on <paramref name="Resource"/>,
/// held (or to be completed) by <paramref name="Through"/>, which is a cycle member
/// (<paramref name="ThroughCycleMember"/>) or another victim.
/// </summary>
public sealed record DeadlockVictim(EmuTask Task, IWaitResource Resource, EmuTask Through, bool ThroughCycleMember);

/// <summary>A detected circular wait.</summary>
/// <param name="Id">1 for the first deadlock a detector reports, then 2, ...</param>
/// <param name="Cycle">The edges in wait order: each edge's holder is the next edge's waiter, and the last edge's holder is the first waiter.</param>
/// <param name="Victims">Tasks blocked behind the cycle when it was reported, in dependency order.</param>
/// <param name="ClosedBy">The task whose sleep closed the cycle (detected on that task, before it blocked), or null when a scan found it.</param>
/// <param name="DetectedAtMs">Environment.TickCount64 at detection (the clock of <see cref="EmuTask.SleepStartMs"/>).</param>
/// <param name="Lines">The report as printed to the kernel log.</param>
public sealed record DeadlockReport(
    int Id,
    IReadOnlyList<DeadlockEdge> Cycle,
    IReadOnlyList<DeadlockVictim> Victims,
    EmuTask? ClosedBy,
    long DetectedAtMs,
    IReadOnlyList<string> Lines)
{
    /// <summary>The tasks of the cycle, in wait order.</summary>
    public EmuTask[] Tasks
    {
        get
        {
            var tasks = new EmuTask[Cycle.Count];
            for (int i = 0; i < tasks.Length; i++)
            {
                tasks[i] = Cycle[i].Waiter;
            }

            return tasks;
        }
    }

    /// <summary>The resources of the cycle, in wait order (what each task of <see cref="Tasks"/> sleeps on).</summary>
    public IWaitResource[] Resources
    {
        get
        {
            var resources = new IWaitResource[Cycle.Count];
            for (int i = 0; i < resources.Length; i++)
            {
                resources[i] = Cycle[i].Resource;
            }

            return resources;
        }
    }

    /// <summary>The report's lines joined with '\n'.</summary>
    public string Text => string.Join('\n', Lines);
}
