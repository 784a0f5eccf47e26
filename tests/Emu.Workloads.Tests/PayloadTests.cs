namespace Emu.Workloads.Tests;

/// <summary>Written blocks identify the write that produced them.</summary>
[TestFixture]
public sealed class PayloadTests
{
    [Test]
    public void Identify_OfAFilledBlock_ReturnsItsWriteId()
    {
        byte[] block = new byte[Payload.BlockSize];
        Payload.Fill(block, 3, 1, 8192, 42);

        Assert.That(Payload.Identify(block, 3, 1, 8192), Is.EqualTo(42));
    }

    [Test]
    public void Identify_OfABlockFoundAtAnotherOffset_ReturnsMinusOne()
    {
        byte[] block = new byte[Payload.BlockSize];
        Payload.Fill(block, 3, 1, 8192, 42);

        Assert.That(Payload.Identify(block, 3, 1, 4096), Is.EqualTo(-1));
        Assert.That(Payload.Identify(block, 3, 0, 8192), Is.EqualTo(-1));
    }

    [Test]
    public void Identify_OfZeros_ReturnsUnwritten()
    {
        Assert.That(Payload.Identify(new byte[Payload.BlockSize], 3, 1, 0), Is.EqualTo(Payload.Unwritten));
    }

    [Test]
    public void DifferentWrites_OfTheSamePlace_DifferBeyondTheHeader()
    {
        byte[] a = new byte[Payload.BlockSize];
        byte[] b = new byte[Payload.BlockSize];
        Payload.Fill(a, 3, 1, 0, 1);
        Payload.Fill(b, 3, 1, 0, 2);

        Assert.That(a.AsSpan(32).SequenceEqual(b.AsSpan(32)), Is.False);
    }
}
