// fs/btrfs/file.c __btrfs_buffered_write and mm/filemap.c do_generic_file_read over btrfs (v4.4): data written
// through the page cache reads back, from the cache and, after writeback and eviction, from disk.
using NUnit.Framework;

namespace Emu.Btrfs.Tests;

public sealed class BufferedIoTests : BtrfsTestBase
{
    [Test]
    public void BufferedWrite_ThenRead_ReturnsTheDataFromTheCache()
    {
        Mount();
        VfsFile file = Fs.Open(Fs.CreateFile());
        byte[] data = Pattern(3 * 4096 + 100, seed: 1);

        WriteOk(file, data, 0);

        Assert.That(file.Inode.ISize, Is.EqualTo(data.Length));
        Assert.That(ReadAll(file, data.Length, 0), Is.EqualTo(data));
    }

    [Test]
    public void BufferedWrite_AfterWritebackAndEviction_ReadsBackFromDisk()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(5 * 4096 + 17, seed: 2);
        WriteOk(file, data, 0);

        DropCache(inode);

        Assert.That(inode.FileExtents.Snapshot(), Is.Not.Empty, "writeback recorded file extent items");
        Assert.That(ReadAll(file, data.Length, 0), Is.EqualTo(data));
    }

    [Test]
    public void BufferedWrite_PartialPageOverwrite_KeepsTheRestOfThePage()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(8192, seed: 3);
        WriteOk(file, data, 0);
        DropCache(inode);
        byte[] patch = Pattern(100, seed: 9);

        WriteOk(file, patch, 1000);

        patch.CopyTo(data, 1000);
        Assert.That(ReadAll(file, 8192, 0), Is.EqualTo(data));
        DropCache(inode);
        Assert.That(ReadAll(file, 8192, 0), Is.EqualTo(data));
    }

    [Test]
    public void Read_OfAHoleBeforeData_ReturnsZeros()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        byte[] data = Pattern(4096, seed: 4);
        WriteOk(file, data, 3 * 4096);
        DropCache(inode);

        byte[] read = ReadAll(file, 4 * 4096, 0);

        Assert.That(read.AsSpan(0, 3 * 4096).ToArray(), Is.All.EqualTo(0));
        Assert.That(read.AsSpan(3 * 4096).ToArray(), Is.EqualTo(data));
    }
}
