using Emu.Btrfs;
using Emu.Workloads.Backing;
using Emu.Workloads.Repro;

namespace Emu.Workloads.Tests;

/// <summary>
/// The repro's interleaving under v4.6's lock_extent_direct (ade770294df2): the DIO read that meets the
/// buffered write's ordered extent returns -ENOTBLK, submits the [0, 4K) it mapped (unlocking it), and reads
/// the rest through the page cache, so every task of the scenario finishes. (The unpatched run deadlocks and
/// leaves its tasks blocked for good, so it is tested in a child process: Emu.Cli.Tests ReproCommandTests.)
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ReproPatchedTests
{
    [Test]
    public void LockExtentDirect_Patched_ReadFallsBackAndEveryTaskCompletesWithVerifiedData()
    {
        ReproResult r = ReproScenario.Run(new ReproOptions
        {
            Mode = BtrfsMode.Patched,
            Backing = new BackingOptions { Engine = BackingEngine.Mem },
        });

        Assert.Multiple(() =>
        {
            Assert.That(r.Failure, Is.Null);
            Assert.That(r.Deadlocked, Is.False);
            Assert.That(r.Completed, Is.True);
            Assert.That(r.ReadBytes, Is.EqualTo(12288));
            Assert.That(r.Mismatches, Is.Empty);
            Assert.That(r.VerifiedBytes, Is.EqualTo(3 * 12288), "the read, the file through O_DIRECT and through the page cache");
            Assert.That(r.Reproduced, Is.True);
            Assert.That(r.Tasks.Select(t => t.Role), Is.SupersetOf(new[] { ReproRoles.DioReader, ReproRoles.BufferedWriter, ReproRoles.Snapshot, ReproRoles.Sync }));
            Assert.That(r.Tasks.Where(t => !t.Role.EndsWith("worker", StringComparison.Ordinal)).Select(t => t.Comm), Has.All.EqualTo("fdm-stress"));
        });
    }

    [Test]
    public void MissingFrames_ChecksTheSeedFramesInOrder()
    {
        string[] frames = ["schedule", "lock_extent_bits", "lock_and_cleanup_extent_if_need", "__btrfs_buffered_write",
            "btrfs_file_write_iter", "__vfs_write", "vfs_write", "SyS_write"];
        string[] swapped = ["schedule", "lock_and_cleanup_extent_if_need", "lock_extent_bits", "__btrfs_buffered_write",
            "btrfs_file_write_iter", "__vfs_write", "vfs_write", "SyS_write"];

        Assert.That(ReproRoles.MissingFrames(ReproRoles.BufferedWriter, frames), Is.Empty);
        Assert.That(ReproRoles.MissingFrames(ReproRoles.BufferedWriter, swapped), Is.EqualTo(new[] { "lock_and_cleanup_extent_if_need" }));
    }
}
