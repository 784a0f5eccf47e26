using Emu.Workloads.Stress;

namespace Emu.Workloads.Tests;

/// <summary>The stress shadow model: which data a read may legally see, and how a mismatch is named.</summary>
[TestFixture]
public sealed class ShadowModelTests
{
    private const ulong Seed = 7;
    private const int Bs = Payload.BlockSize;

    private static byte[] Blocks(int file, int firstBlock, params long[] writeIds)
    {
        byte[] data = new byte[writeIds.Length * Bs];
        for (int i = 0; i < writeIds.Length; i++)
        {
            if (writeIds[i] != Payload.Unwritten)
            {
                Payload.Fill(data.AsSpan(i * Bs, Bs), Seed, file, (long)(firstBlock + i) * Bs, writeIds[i]);
            }
        }

        return data;
    }

    private static long Write(ShadowModel model, int file, int first, int blocks)
    {
        WriteTicket t = model.BeginWrite(file, first, blocks);
        model.EndWrite(t, blocks);
        return t.Id;
    }

    [Test]
    public void Read_WithOneCorruptedByte_ReportsFileOffsetExpectedAndFound()
    {
        var model = new ShadowModel(files: 2, blocksPerFile: 4, Seed);
        long id = Write(model, 1, 0, 2);
        byte[] data = Blocks(1, 0, id, id);
        data[Bs + 100] ^= 0x40;
        var mismatches = new List<Mismatch>();

        ReadTicket r = model.BeginRead(1);
        int good = model.EndRead(r, ino: 258, firstBlock: 0, data, "test read", mismatches);

        Assert.That(good, Is.EqualTo(1));
        Assert.That(mismatches, Has.Count.EqualTo(1));
        Mismatch m = mismatches[0];
        Assert.Multiple(() =>
        {
            Assert.That(m.File, Is.EqualTo(1));
            Assert.That(m.Ino, Is.EqualTo(258));
            Assert.That(m.Offset, Is.EqualTo(Bs));
            Assert.That(m.Expected, Is.EqualTo($"write {id}"));
            Assert.That(m.Found, Does.Contain($"damaged data claiming write {id}"));
            Assert.That(m.ToString(), Does.Contain("file 1 (inode 258) offset 4096: expected write 1, found damaged"));
        });
    }

    [Test]
    public void Read_AfterACompletedOverwrite_RejectsTheOldData()
    {
        var model = new ShadowModel(1, 2, Seed);
        long first = Write(model, 0, 0, 1);
        long second = Write(model, 0, 0, 1);
        var mismatches = new List<Mismatch>();

        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, first), "stale", mismatches);
        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, second), "fresh", mismatches);

        Assert.That(mismatches, Has.Count.EqualTo(1));
        Assert.That(mismatches[0].Expected, Is.EqualTo($"write {second}"));
        Assert.That(mismatches[0].Found, Is.EqualTo($"write {first}"));
    }

    [Test]
    public void Read_OverlappingAWriteInFlight_AcceptsOldAndNewData()
    {
        var model = new ShadowModel(1, 2, Seed);
        long old = Write(model, 0, 0, 2);
        ReadTicket r1 = model.BeginRead(0);
        ReadTicket r2 = model.BeginRead(0);
        WriteTicket w = model.BeginWrite(0, 0, 2);
        var mismatches = new List<Mismatch>();

        model.EndRead(r1, 257, 0, Blocks(0, 0, old, w.Id), "torn across blocks", mismatches);
        model.EndWrite(w, 2);
        model.EndRead(r2, 257, 0, Blocks(0, 0, w.Id, old), "started before the write ended", mismatches);

        Assert.That(mismatches, Is.Empty);
    }

    [Test]
    public void Read_StartedAfterAWriteEnded_RejectsWhatItOverwrote()
    {
        var model = new ShadowModel(1, 1, Seed);
        long old = Write(model, 0, 0, 1);
        WriteTicket w = model.BeginWrite(0, 0, 1);
        ReadTicket during = model.BeginRead(0);
        model.EndWrite(w, 1);
        ReadTicket after = model.BeginRead(0);
        var mismatches = new List<Mismatch>();

        model.EndRead(during, 257, 0, Blocks(0, 0, old), "during", mismatches);
        model.EndRead(after, 257, 0, Blocks(0, 0, old), "after", mismatches);

        Assert.That(mismatches, Has.Count.EqualTo(1));
        Assert.That(mismatches[0].Context, Is.EqualTo("after"));
    }

    [Test]
    public void Zeros_AreLegalOnlyUntilABlockIsFirstWritten()
    {
        var model = new ShadowModel(1, 2, Seed);
        var mismatches = new List<Mismatch>();
        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, Payload.Unwritten, Payload.Unwritten), "fresh file", mismatches);
        Write(model, 0, 1, 1);

        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, Payload.Unwritten, Payload.Unwritten), "after a write", mismatches);

        Assert.That(mismatches, Has.Count.EqualTo(1));
        Assert.That(mismatches[0].Offset, Is.EqualTo(Bs));
        Assert.That(mismatches[0].Found, Is.EqualTo("zeros (never written)"));
    }

    [Test]
    public void ConcurrentWrites_LeaveEitherLegalUntilALaterWriteSettlesIt()
    {
        var model = new ShadowModel(1, 1, Seed);
        WriteTicket a = model.BeginWrite(0, 0, 1);
        WriteTicket b = model.BeginWrite(0, 0, 1);
        model.EndWrite(b, 1);
        model.EndWrite(a, 1);
        var mismatches = new List<Mismatch>();
        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, b.Id), "racing writes", mismatches);
        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, a.Id), "racing writes", mismatches);
        long c = Write(model, 0, 0, 1);

        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, a.Id), "settled", mismatches);

        Assert.That(mismatches, Has.Count.EqualTo(1));
        Assert.That(mismatches[0].Expected, Is.EqualTo($"write {c}"));
    }

    [Test]
    public void Read_TornBetweenTheOldAndAnInFlightWrite_IsLegalButCounted()
    {
        var model = new ShadowModel(1, 1, Seed);
        long old = Write(model, 0, 0, 1);
        ReadTicket r = model.BeginRead(0);
        WriteTicket w = model.BeginWrite(0, 0, 1);
        byte[] torn = Blocks(0, 0, w.Id);
        Blocks(0, 0, old).AsSpan(2048).CopyTo(torn.AsSpan(2048));
        var mismatches = new List<Mismatch>();

        model.EndRead(r, 257, 0, torn, "racing", mismatches);

        Assert.That(mismatches, Is.Empty);
        Assert.That(model.TornBlocks, Is.EqualTo(1));
    }

    [Test]
    public void Read_TornWithAByteNoWriteWrote_IsAMismatch()
    {
        var model = new ShadowModel(1, 1, Seed);
        long old = Write(model, 0, 0, 1);
        ReadTicket r = model.BeginRead(0);
        WriteTicket w = model.BeginWrite(0, 0, 1);
        byte[] torn = Blocks(0, 0, w.Id);
        Blocks(0, 0, old).AsSpan(2048).CopyTo(torn.AsSpan(2048));
        torn[3000] ^= 1;
        var mismatches = new List<Mismatch>();

        model.EndRead(r, 257, 0, torn, "racing", mismatches);

        Assert.That(mismatches, Has.Count.EqualTo(1));
        Assert.That(model.TornBlocks, Is.Zero);
    }

    [Test]
    public void ShortWrite_LeavesItsUnwrittenBlocksLegalEitherWay()
    {
        var model = new ShadowModel(1, 2, Seed);
        long old = Write(model, 0, 0, 2);
        WriteTicket w = model.BeginWrite(0, 0, 2);
        model.EndWrite(w, blocksDone: 1);
        var mismatches = new List<Mismatch>();

        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, w.Id, old), "short write, old tail", mismatches);
        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, w.Id, w.Id), "short write, new tail", mismatches);
        model.EndRead(model.BeginRead(0), 257, 0, Blocks(0, 0, old, old), "old head", mismatches);

        Assert.That(mismatches, Has.Count.EqualTo(1));
        Assert.That(mismatches[0].Offset, Is.EqualTo(0));
    }
}
