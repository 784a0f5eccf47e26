// A deadlock v4.6 still has, with ade770294df2 (README, `--dio-writers`): a DIO read keeps block 0 locked in
// the io tree with its bio unsent (fs/direct-io.c holds it as the current page), maps block 1 and meets a DIO
// write's ordered extent B = [4K, 8K). v4.6 returns -ENOTBLK only for a buffered write's ordered extent; B is
// DIRECT, so the read waits for it. B's btrfs_finish_ordered_io had met a second DIO write's lock on [0, 8K)
// first, and wait_extent_bit, which searches again from the start of the state it slept on, then sleeps on the
// read's [0, 4K): the read waits for B, B's completion for [0, 4K), and only the read's unsent bio would
// release [0, 4K).
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class DioWriteDeadlockScenarioTests : BtrfsTestBase
{
    private static readonly string[] s_readerTrace =
    [
        "btrfs_start_ordered_extent", "btrfs_get_blocks_direct", "do_blockdev_direct_IO", "__blockdev_direct_IO",
        "btrfs_direct_IO", "generic_file_read_iter", "__vfs_read", "vfs_read",
    ];

    private static readonly string[] s_finishTrace = ["lock_extent_bits", "btrfs_finish_ordered_io"];

    [Test]
    public void DioReadAndTwoDioWrites_Patched_DeadlockThroughWaitExtentBitRestart()
    {
        Mount(BtrfsMode.Patched);
        BtrfsInode inode = Fs.CreateFile();
        WriteOk(Fs.Open(inode), Pattern(2 * 4096, 1), 0);
        Assert.That(Fs.Fsync(Fs.Open(inode)), Is.EqualTo(0));
        using var detector = new DeadlockDetector();
        detector.Install();

        // 1. A DIO write of [4K, 8K) creates B and completes; B's completion stops where it locks B's range.
        PauseGate finish = PauseAtPlain(SchedPoint.LockExtent, () => EmuTask.Current!.Frames.Contains("btrfs_finish_ordered_io"));
        EmuTask firstWriter = Run("fdm-stress", () => WriteOk(Fs.Open(inode, OpenFlags.Direct), Pattern(4096, 2), 4096));
        finish.WaitReached();
        JoinOk(firstWriter);
        EmuTask kworker = finish.Task!;

        // 2. A DIO write of [0, 8K) locks it in lock_extent_direct and finds B.
        PauseGate secondFoundB = PauseAt(SchedPoint.LockExtentDirectOrdered, d => d is BtrfsOrderedExtent { FileOffset: 4096 });
        EmuTask secondWriter = Run("fdm-stress", () => WriteOk(Fs.Open(inode, OpenFlags.Direct), Pattern(2 * 4096, 3), 0));
        secondFoundB.WaitReached();

        // 3. B's completion goes on, meets that lock on [0, 8K) and sleeps on it.
        finish.Release();
        WaitUntil(() => kworker.WaitingOn?.Describe() == "extent range [0, 8191] of inode 257", "the completion sleeps on [0, 8K)");

        // 4. The second writer unlocks [0, 8K), waking the completion (held before its new search), and waits for B.
        PauseGate woken = PauseAt(SchedPoint.WaitExtentBitWoken, d => d is ExtentWaitRange { Start: 0, End: 8191 });
        secondFoundB.Release();
        woken.WaitReached();

        // 5. The DIO read of [0, 8K) maps block 0, keeps [0, 4K) locked and waits for B at block 1.
        var buffer = new byte[2 * 4096];
        EmuTask reader = Run("fdm-stress", () => Fs.VfsRead(Fs.Open(inode, OpenFlags.Direct), buffer, 0));
        WaitUntil(() => reader.Frames.Contains("btrfs_start_ordered_extent") && reader.State == TaskState.Uninterruptible, "the read waits for B");
        Assert.That(HeldLocks.Format(reader), Does.Contain("(extent range [0, 4095] of inode 257)"));

        // 6. The completion searches again from 0 and sleeps on the read's [0, 4K): the cycle closes.
        woken.Release();
        WaitUntil(() => detector.DeadlocksDetected > 0, "the wait-for graph closes");

        DeadlockReport report = detector.Reports[0];
        Assert.That(report.Tasks, Is.EquivalentTo(new[] { reader, kworker }));
        Assert.That(kworker.WaitingOn!.Describe(), Is.EqualTo("extent range [0, 4095] of inode 257"));
        Assert.That(reader.WaitingOn!.Describe(), Does.StartWith("ordered extent [4096, 8191] of inode 257"));
        AssertInOrder(reader.Frames, s_readerTrace);
        AssertInOrder(kworker.Frames, s_finishTrace);

        // Break the cycle so the test can clean up: drop the read's lock on [0, 4K) behind its back.
        inode.IoTree.UnlockExtent(0, 4095);
        JoinOk(secondWriter);
        JoinOk(reader);
    }
}
