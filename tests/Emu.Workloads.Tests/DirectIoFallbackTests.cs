using Emu.Btrfs;
using Emu.Workloads.Backing;

namespace Emu.Workloads.Tests;

/// <summary>
/// check_direct_IO (fs/btrfs/inode.c, v4.4): an O_DIRECT read or write at an offset or length that is not
/// sector aligned is done through the page cache instead (btrfs_direct_IO returns 0), with the same result.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DirectIoFallbackTests
{
    [Test]
    public void UnalignedDirectIo_FallsBackToBufferedIo()
    {
        Machine m = Machine.Boot(BackingStore.Open(new BackingOptions { Engine = BackingEngine.Mem, RequiredBytes = 16L << 20 }),
            new MachineOptions { Mode = BtrfsMode.Patched });
        byte[] data = Enumerable.Range(0, 3 * Payload.BlockSize).Select(i => (byte)(i * 7)).ToArray();
        byte[] patch = Enumerable.Range(0, 1000).Select(i => (byte)(255 - i)).ToArray();
        byte[] got = new byte[5000];
        long wrote = 0;
        long read = 0;
        Machine.RunTask("fdm-stress", () =>
        {
            BtrfsInode inode = m.Fs.CreateFile();
            VfsFile direct = m.Fs.Open(inode, OpenFlags.Direct);
            ReadWrite.SysPwrite64(m.Fs.Open(inode), data, 0);
            wrote = ReadWrite.SysPwrite64(direct, patch, 100);
            read = ReadWrite.SysPread64(direct, got, 50);
        });
        m.Shutdown();
        patch.CopyTo(data, 100);

        Assert.That(wrote, Is.EqualTo(patch.Length));
        Assert.That(read, Is.EqualTo(got.Length));
        Assert.That(got, Is.EqualTo(data.AsSpan(50, got.Length).ToArray()));
    }
}
