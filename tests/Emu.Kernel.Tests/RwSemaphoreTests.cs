// kernel/locking/rwsem.c behaviour: shared readers, exclusive writer, queued writers blocking new readers.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class RwSemaphoreTests : KernelTestBase
{
    [Test]
    public void DownRead_WhileAnotherReaderHolds_DoesNotSleep()
    {
        using AdoptedTask self = EmuTask.Adopt("reader-1");
        var sem = new RwSemaphore("&fs_info->subvol_sem");
        sem.DownRead();

        var second = EmuTask.Run("reader-2", () =>
        {
            sem.DownRead();
            sem.UpRead();
        });
        JoinOk(second);

        Assert.That(second.Nvcsw, Is.Zero);
        Assert.That(sem.Readers, Is.EqualTo(1));
        sem.UpRead();
        Assert.That(sem.Readers, Is.Zero);
    }

    [Test]
    public void DownWrite_WhileReaderHolds_SleepsUntilUpRead()
    {
        using AdoptedTask self = EmuTask.Adopt("reader");
        var sem = new RwSemaphore("&fs_info->subvol_sem");
        sem.DownRead();
        bool wrote = false;
        var writer = EmuTask.Run("writer", () =>
        {
            sem.DownWrite();
            wrote = true;
            sem.UpWrite();
        });

        WaitUntilSleeping(writer);
        Assert.That(wrote, Is.False);
        Assert.That(writer.WaitingOn, Is.SameAs(sem));
        Assert.That(writer.Frames.Take(3), Is.EqualTo(new[] { "schedule", "rwsem_down_write_failed", "call_rwsem_down_write_failed" }));
        var holders = new List<EmuTask>();
        sem.AppendHolders(holders);
        Assert.That(holders, Is.EqualTo(new[] { self.Task }));

        sem.UpRead();
        JoinOk(writer);
        Assert.That(wrote, Is.True);
    }

    [Test]
    public void DownRead_WhileWriterHolds_SleepsUntilUpWrite()
    {
        using AdoptedTask self = EmuTask.Adopt("writer");
        var sem = new RwSemaphore("&fs_info->subvol_sem");
        sem.DownWrite();
        Assert.That(sem.Writer, Is.SameAs(self.Task));
        var reader = EmuTask.Run("reader", () =>
        {
            sem.DownRead();
            sem.UpRead();
        });

        WaitUntilSleeping(reader);
        var holders = new List<EmuTask>();
        reader.WaitingOn!.AppendHolders(holders);
        Assert.That(holders, Is.EqualTo(new[] { self.Task }));

        sem.UpWrite();
        JoinOk(reader);
        Assert.That(sem.Writer, Is.Null);
    }

    [Test]
    public void DownRead_WhileWriterWaits_QueuesBehindTheWriter()
    {
        using AdoptedTask self = EmuTask.Adopt("reader-1");
        var sem = new RwSemaphore("&fs_info->subvol_sem");
        sem.DownRead();
        var writer = EmuTask.Run("writer", () =>
        {
            sem.DownWrite();
            sem.UpWrite();
        });
        WaitUntilSleeping(writer);

        var lateReader = EmuTask.Run("reader-2", () =>
        {
            sem.DownRead();
            sem.UpRead();
        });
        WaitUntilSleeping(lateReader);
        Assert.That(sem.Readers, Is.EqualTo(1), "a queued writer keeps new readers out");

        sem.UpRead();
        JoinOk(writer);
        JoinOk(lateReader);
    }

    [Test]
    public void Trylocks_RespectTheCurrentHolders()
    {
        using AdoptedTask self = EmuTask.Adopt("test");
        var sem = new RwSemaphore("&test->trylock_sem");

        Assert.That(sem.DownReadTrylock(), Is.True);
        Assert.That(sem.DownWriteTrylock(), Is.False);
        sem.UpRead();
        Assert.That(sem.DownWriteTrylock(), Is.True);
        Assert.That(sem.DownReadTrylock(), Is.False);
        sem.UpWrite();
        Assert.That(HeldLocks.Count(self.Task), Is.Zero);
    }
}
