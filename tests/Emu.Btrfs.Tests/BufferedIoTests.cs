// fs/btrfs/file.c __btrfs_buffered_write and mm/filemap.c do_generic_file_read over btrfs (v4.4): data written
// through the page cache reads back, from the cache and, after writeback and eviction, from disk.
using Emu.Kernel;
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

    [Test]
    public void SysWriteAndSysRead_AdvanceTheFilePositionAndAppendAtEof()
    {
        Mount();
        BtrfsInode inode = Fs.CreateFile();
        VfsFile file = Fs.Open(inode);
        VfsFile append = Fs.Open(inode, OpenFlags.Append);
        byte[] first = Pattern(5000, 1);
        byte[] second = Pattern(300, 2);

        Assert.That(ReadWrite.SysWrite(file, first), Is.EqualTo(first.Length));
        Assert.That(file.Pos, Is.EqualTo(first.Length));
        Assert.That(ReadWrite.SysWrite(append, second), Is.EqualTo(second.Length));
        file.Pos = 0;
        var buf = new byte[6000];
        long n = ReadWrite.SysRead(file, buf);

        Assert.That(n, Is.EqualTo(first.Length + second.Length));
        Assert.That(file.Pos, Is.EqualTo(n));
        Assert.That(buf.AsSpan(0, first.Length).ToArray(), Is.EqualTo(first));
        Assert.That(buf.AsSpan(first.Length, second.Length).ToArray(), Is.EqualTo(second));
        Assert.That(ReadWrite.SysRead(file, buf), Is.EqualTo(0), "EOF");
        Assert.That(HeldLocks.Count(EmuTask.Current!), Is.EqualTo(0), "f_pos_lock and sb_writers were released");
    }
}
