namespace Emu.Interop.Tests;

public sealed class NativeBufferTests
{
    [TestCase(1L)]
    [TestCase(4096L)]
    [TestCase(3L * 4096 + 17)]
    public void Allocate_IsZeroedWritableAndPageAligned(long size)
    {
        using NativeBuffer buffer = NativeBuffer.Allocate(size);

        Assert.That((long)buffer.Pointer % NativeBuffer.Alignment, Is.Zero);
        Assert.That(buffer.Length, Is.EqualTo(size));
        Assert.That(buffer.Span.Length, Is.EqualTo(size));
        Assert.That(buffer.Span.ContainsAnyExcept((byte)0), Is.False);
        buffer.Span.Fill(0xA5);
        Assert.That(buffer.Span[^1], Is.EqualTo(0xA5));
    }

    [Test]
    public void Allocate_OnNode0_IsPageAligned()
    {
        using NativeBuffer buffer = NativeBuffer.Allocate(8192, node: 0);

        Assert.That((long)buffer.Pointer % NativeBuffer.Alignment, Is.Zero);
    }

    [Test]
    public void Allocate_NonPositiveSize_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeBuffer.Allocate(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeBuffer.Allocate(-4096));
    }

    [Test]
    public void Dispose_ReleasesTheBlockAndLaterUseThrows()
    {
        NativeBuffer buffer = NativeBuffer.Allocate(4096);

        buffer.Dispose();

        Assert.That(buffer.Handle.IsClosed, Is.True);
        Assert.Throws<ObjectDisposedException>(() => _ = buffer.Pointer);
        Assert.Throws<ObjectDisposedException>(() => _ = buffer.Span.Length);
    }
}
