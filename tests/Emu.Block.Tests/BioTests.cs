using System.Runtime.CompilerServices;

namespace Emu.Block.Tests;

/// <summary>struct bio and its pool (block/bio.c v4.4): vectors, references, splitting and chaining.</summary>
public sealed class BioTests : BlockTestBase
{
    [Test]
    public void AddPage_ContiguousInTheSamePage_ExtendsTheLastVector()
    {
        NativeBuffer mem = Buffer(8192);
        var page = new Page(null, 257, 0, mem.Pointer);
        var other = new Page(null, 257, 1, mem.Pointer + 4096);
        Bio bio = Bio.Alloc(4);

        bio.AddPage(page, 512, 0);
        bio.AddPage(page, 1024, 512);
        bio.AddPage(other, 4096, 0);

        Assert.That(bio.BiVcnt, Is.EqualTo(2));
        Assert.That(bio.Vecs[0].BvLen, Is.EqualTo(1536u));
        Assert.That(bio.Vecs[1].BvPage, Is.SameAs(other));
        Assert.That(bio.BiSize, Is.EqualTo(1536u + 4096u));
        bio.Put();
    }

    [Test]
    public void AddPage_PastMaxVecs_ReturnsZero()
    {
        NativeBuffer mem = Buffer(3 * 4096);
        Bio bio = Bio.Alloc(2);

        Assert.That(bio.AddBuffer(mem.Pointer, 100), Is.EqualTo(100u));
        Assert.That(bio.AddBuffer(mem.Pointer + 4096, 100), Is.EqualTo(100u));
        Assert.That(bio.AddBuffer(mem.Pointer + 8192, 100), Is.Zero);
        Assert.That(bio.BiSize, Is.EqualTo(200u));
        bio.Put();
    }

    [Test]
    public void Put_LastReference_ReturnsTheBioToItsPool()
    {
        var set = new BioSet(1, 4);
        Bio first = set.Alloc(4);
        first.Get();

        first.Put();
        Assert.That(set.Alloc(4), Is.Not.SameAs(first), "still referenced: not back in the pool");
        first.Put();
        Bio again = set.Alloc(3);

        Assert.That(again, Is.SameAs(first));
        Assert.That((again.BiSize, again.BiVcnt, again.BiEndIo, again.BiMaxVecs), Is.EqualTo((0u, 0, (Action<Bio>?)null, 3)));
        Assert.That(set.Created, Is.EqualTo(2));
    }

    [Test]
    public void Alloc_TakesTheSmallestBiovecSizeClassThatFits()
    {
        var set = new BioSet(0, Blk.BioMaxPages);

        Assert.That(new[] { 1, 2, 16, 17, 200 }.Select(n => set.Alloc(n).VecCapacity), Is.EqualTo(new[] { 1, 4, 16, 64, 256 }));
    }

    [Test]
    public void SplitAndChain_ParentEndsOnlyAfterBothParts_WithTheChildsError()
    {
        NativeBuffer mem = Buffer(8192);
        var set = new BioSet(2, 1);
        Bio parent = set.Alloc(1);
        parent.BiSector = 100;
        parent.AddBuffer(mem.Pointer, 8192);
        parent.BiPrivate = new StrongBox<int>(0);
        parent.BiEndIo = static b => ((StrongBox<int>)b.BiPrivate!).Value++;

        Bio front = parent.Split(4, set);
        front.Chain(parent);

        Assert.That((front.BiSector, front.BiSize), Is.EqualTo((100L, 2048u)));
        Assert.That((parent.BiSector, parent.BiSize), Is.EqualTo((104L, 6144u)));
        front.BiError = -5;
        Bio.Endio(front);
        Assert.That(((StrongBox<int>)parent.BiPrivate!).Value, Is.Zero, "the parent waits for its own completion");
        Bio.Endio(parent);
        Assert.That(((StrongBox<int>)parent.BiPrivate!).Value, Is.EqualTo(1));
        Assert.That(parent.BiError, Is.EqualTo(-5));
    }
}
