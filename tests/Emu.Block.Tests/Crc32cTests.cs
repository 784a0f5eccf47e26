namespace Emu.Block.Tests;

/// <summary>CRC-32C as lib/libcrc32c.c computes it (btrfs's checksum).</summary>
public sealed class Crc32cTests
{
    [Test]
    public void Compute_OfTheStandardCheckString_IsE3069283()
    {
        Assert.That(Crc32c.Compute("123456789"u8), Is.EqualTo(0xE3069283u));
    }

    [Test]
    public void Update_InPieces_EqualsOneShot_AndTheTableForm()
    {
        byte[] data = new byte[4099];
        new Random(3).NextBytes(data);

        uint whole = Crc32c.Update(~0u, data);
        uint pieces = Crc32c.Update(Crc32c.Update(~0u, data.AsSpan(0, 1001)), data.AsSpan(1001));

        Assert.That(pieces, Is.EqualTo(whole));
        Assert.That(Crc32c.UpdateTable(~0u, data), Is.EqualTo(whole));
        for (int len = 0; len < 20; len++)
        {
            Assert.That(Crc32c.UpdateTable(7, data.AsSpan(0, len)), Is.EqualTo(Crc32c.Update(7, data.AsSpan(0, len))), $"length {len}");
        }
    }
}
