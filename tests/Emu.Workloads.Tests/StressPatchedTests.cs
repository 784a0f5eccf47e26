using Emu.Btrfs;
using Emu.Workloads.Backing;
using Emu.Workloads.Stress;

namespace Emu.Workloads.Tests;

/// <summary>The fdm-stress mix under v4.6 on the RAM disk: the data every read and the final check see is legal.</summary>
[TestFixture]
[NonParallelizable]
public sealed class StressPatchedTests
{
    [Test]
    public void Stress_Patched_OnMemForTwoSeconds_HasNoMismatches()
    {
        StressResult r = StressWorkload.Run(new StressOptions
        {
            Mode = BtrfsMode.Patched,
            Files = 2,
            FileSize = 64 * 1024,
            Tasks = 4,
            Runtime = TimeSpan.FromSeconds(2),
            Seed = 11,
            Backing = new BackingOptions { Engine = BackingEngine.Mem },
        });

        Assert.Multiple(() =>
        {
            Assert.That(r.Failure, Is.Null);
            Assert.That(r.MismatchCount, Is.Zero, string.Join("\n", r.Mismatches));
            Assert.That(r.FinalCheckDone, Is.True, "every file is checked after sync");
            Assert.That(r.VerifiedBytes, Is.GreaterThan(0));
            Assert.That(r.Deadlocked, Is.False);
            Assert.That(r.HungTasks, Is.Empty);
            Assert.That(r.IoErrors, Is.Zero, r.FirstIoError);
            Assert.That(r.Stats.Where(s => s.Op is StressOp.BufferedWrite or StressOp.DirectRead or StressOp.Sync).Select(s => s.Count), Has.All.GreaterThan(0));
        });
    }

    [Test]
    public void SeededSource_SameSeed_GivesTheSameChoices()
    {
        Rng a = new SeededSource(5).ForTask(2);
        Rng b = new SeededSource(5).ForTask(2);
        Rng c = new SeededSource(5).ForTask(3);
        int[] xa = Enumerable.Range(0, 16).Select(_ => a.Next(1000)).ToArray();
        int[] xb = Enumerable.Range(0, 16).Select(_ => b.Next(1000)).ToArray();
        int[] xc = Enumerable.Range(0, 16).Select(_ => c.Next(1000)).ToArray();

        Assert.That(xa, Is.EqualTo(xb));
        Assert.That(xa, Is.Not.EqualTo(xc));
    }

    [Test]
    public void RequiredBackingBytes_GrowsWithFilesAndFileSize()
    {
        var small = new StressOptions { Files = 1, FileSize = 64 * 1024 };
        var big = new StressOptions { Files = 4, FileSize = 1 << 20 };

        Assert.That(big.RequiredBackingBytes, Is.GreaterThan(small.RequiredBackingBytes));
        Assert.That(big.RequiredBackingBytes, Is.GreaterThanOrEqualTo(4L * (1 << 20) * StressOptions.MaxSnapshots));
    }
}
