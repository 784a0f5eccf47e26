// kernel/sched/wait.c bit waits: the hashed bit wait table keyed by (word, bit).
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class BitWaitTests : KernelTestBase
{
    private sealed class Flags
    {
        public long Word;
    }

    [Test]
    public void WakeUpBit_ForAnotherBit_DoesNotWakeTheWaiter()
    {
        var flags = new Flags { Word = 0b11 };
        var waiter = EmuTask.Run("waiter", () => WaitBit.WaitOnBit(flags, ref flags.Word, 0));
        WaitUntilSleeping(waiter);

        Bitops.ClearBit(ref flags.Word, 1);
        WaitBit.WakeUpBit(flags, 1);
        Assert.That(waiter.State, Is.EqualTo(TaskState.Uninterruptible));

        Bitops.ClearBit(ref flags.Word, 0);
        WaitBit.WakeUpBit(flags, 0);
        JoinOk(waiter);
    }

    [Test]
    public void WaitOnBitLock_TakesTheBitOnceReleased()
    {
        var flags = new Flags { Word = 1 };
        var locker = EmuTask.Run("locker", () => WaitBit.WaitOnBitLock(flags, ref flags.Word, 0));
        WaitUntilSleeping(locker);

        Bitops.ClearBit(ref flags.Word, 0);
        WaitBit.WakeUpBit(flags, 0);
        JoinOk(locker);

        Assert.That(Bitops.TestBit(ref flags.Word, 0), Is.True, "the waiter now holds the bit");
    }

    [Test]
    public void WaitOnBit_BitClear_ReturnsWithoutSleeping()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var flags = new Flags();

        WaitBit.WaitOnBit(flags, ref flags.Word, 5);

        Assert.That(self.Task.Nvcsw, Is.Zero);
    }

    [Test]
    public void Bitops_TestAndSetAndClear_ReportThePreviousValue()
    {
        long word = 0;

        Assert.That(Bitops.TestAndSetBit(ref word, 63), Is.False);
        Assert.That(Bitops.TestAndSetBit(ref word, 63), Is.True);
        Assert.That(Bitops.TestAndClearBit(ref word, 63), Is.True);
        Assert.That(Bitops.TestAndClearBit(ref word, 63), Is.False);
        Assert.That(word, Is.Zero);
    }
}
