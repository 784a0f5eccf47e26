// One workload of `emu compare`: the repro scenario, or a stress mix (a built-in one or a section of a
// fio-style job file). Compare runs each in both modes, every run in a child emu process.
using Emu.Btrfs;
using Emu.Workloads.Stress;

namespace Emu.Workloads.Compare;

/// <summary>What a compare workload runs.</summary>
public enum CompareKind
{
    /// <summary>`emu repro`: the scripted interleaving of ade770294df2.</summary>
    Repro,

    /// <summary>`emu stress`: unscripted concurrency on real threads.</summary>
    Stress,
}

/// <summary>A named workload and its stress shape (ignored for <see cref="CompareKind.Repro"/>).</summary>
public sealed record CompareWorkload
{
    /// <summary>The source of the built-in workloads in results.json.</summary>
    public const string BuiltinSource = "builtin";

    /// <summary>The name on the command line, in the table and in file names.</summary>
    public required string Name { get; init; }

    /// <summary>"builtin", or the job file it came from.</summary>
    public string Source { get; init; } = BuiltinSource;

    /// <summary>One line saying what it exercises.</summary>
    public string Description { get; init; } = "";

    /// <summary>Repro or stress.</summary>
    public CompareKind Kind { get; init; } = CompareKind.Stress;

    /// <summary>Files (fio nrfiles).</summary>
    public int Files { get; init; } = 2;

    /// <summary>Bytes per file (fio filesize).</summary>
    public long FileSize { get; init; } = 64 * 1024;

    /// <summary>Data tasks (fio numjobs).</summary>
    public int Tasks { get; init; } = 4;

    /// <summary>O_DIRECT readers among the data tasks, or null for alternate writers and readers.</summary>
    public int? Readers { get; init; }

    /// <summary>O_DIRECT writers beside the data tasks.</summary>
    public int DirectWriters { get; init; }

    /// <summary>Whether tasks may touch the same blocks.</summary>
    public bool Conflicts { get; init; } = true;

    /// <summary>Bytes per data operation (fio bs), or null for random sizes.</summary>
    public long? BlockSize { get; init; }

    /// <summary>Whether a syncer task runs.</summary>
    public bool Syncer { get; init; } = true;

    /// <summary>Whether a snapshot task runs.</summary>
    public bool Snapshotter { get; init; } = true;

    /// <summary>The run time of each run, or null for compare's --runtime.</summary>
    public TimeSpan? Runtime { get; init; }

    /// <summary>The workloads `emu compare` runs unless told otherwise.</summary>
    public static IReadOnlyList<CompareWorkload> Builtins { get; } =
    [
        new()
        {
            Name = "repro", Kind = CompareKind.Repro,
            Description = "the scripted interleaving of ade770294df2: deadlocks unpatched, completes patched",
        },
        new()
        {
            Name = "stress-disjoint", FileSize = 256 * 1024, Readers = 2, Conflicts = false,
            Description = "2 buffered writers, 2 O_DIRECT readers, each on its own blocks: neither kernel can deadlock",
        },
        new()
        {
            Name = "stress-conflict",
            Description = "the fdm-stress mix: writers and O_DIRECT readers on the same blocks of two 64 KiB files",
        },
        new()
        {
            Name = "dio-read-heavy", Readers = 3,
            Description = "3 O_DIRECT readers and 1 buffered writer on the same blocks",
        },
        new()
        {
            Name = "buffered-write-heavy", Readers = 1,
            Description = "3 buffered writers and 1 O_DIRECT reader on the same blocks",
        },
    ];

    /// <summary>The stress options of one run (for validation, and to describe the run).</summary>
    public StressOptions ToStressOptions(BtrfsMode mode, TimeSpan runtime, ulong seed) => new()
    {
        Mode = mode,
        Files = Files,
        FileSize = FileSize,
        Tasks = Tasks,
        Readers = Readers,
        DirectWriters = DirectWriters,
        Conflicts = Conflicts,
        BlockSize = BlockSize,
        Syncer = Syncer,
        Snapshotter = Snapshotter,
        Runtime = Runtime ?? runtime,
        Seed = seed,
    };
}
