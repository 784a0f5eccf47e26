// The shadow stack of kernel function names that reports print as call traces.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class ShadowStackTests : KernelTestBase
{
    [Test]
    public void Frames_AreInnermostFirst()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        using KFrame a = KFunc.Enter("btrfs_direct_IO");
        using KFrame b = KFunc.Enter("btrfs_get_blocks_direct");
        using KFrame c = KFunc.Enter("btrfs_start_ordered_extent");

        Assert.That(self.Task.Frames, Is.EqualTo(new[] { "btrfs_start_ordered_extent", "btrfs_get_blocks_direct", "btrfs_direct_IO" }));
        Assert.That(self.Task.TopFrame, Is.EqualTo("btrfs_start_ordered_extent"));
    }

    [Test]
    public void DisposingAFrame_PopsIt()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        using KFrame outer = KFunc.Enter("vfs_write");
        using (KFrame inner = KFunc.Enter("btrfs_file_write_iter"))
        {
            Assert.That(self.Task.FrameDepth, Is.EqualTo(2));
        }

        Assert.That(self.Task.Frames, Is.EqualTo(new[] { "vfs_write" }));
    }

    [Test]
    public void Frames_AfterAnExceptionUnwinds_ArePopped()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");

        Assert.That(() =>
        {
            using KFrame frame = KFunc.Enter("btrfs_ioctl");
            throw new InvalidOperationException();
        }, Throws.InvalidOperationException);

        Assert.That(self.Task.FrameDepth, Is.Zero);
    }

    [Test]
    public void Enter_DeeperThanMaxFrames_KeepsTheOutermostAndPopsBack()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress");
        Recurse(self.Task, EmuTask.MaxFrames + 10);

        Assert.That(self.Task.FrameDepth, Is.Zero);

        static void Recurse(EmuTask task, int left)
        {
            using KFrame frame = task.Enter("recurse");
            if (left > 1)
            {
                Recurse(task, left - 1);
            }
            else
            {
                Assert.That(task.FrameDepth, Is.EqualTo(EmuTask.MaxFrames + 10));
                Assert.That(task.Frames, Has.Length.EqualTo(EmuTask.MaxFrames));
            }
        }
    }

    [Test]
    public void KFuncEnter_OnHostThread_IsANoOp()
    {
        using KFrame frame = KFunc.Enter("vfs_read");

        Assert.That(EmuTask.Current, Is.Null);
    }
}
