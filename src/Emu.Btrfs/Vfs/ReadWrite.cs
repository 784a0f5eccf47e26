// Mirrors: fs/read_write.c (v4.4): SyS_read, SyS_write, SyS_pread64, SyS_pwrite64, vfs_read, vfs_write,
// __vfs_read, __vfs_write, new_sync_read, new_sync_write; fs/file.c __fdget_pos; include/linux/fs.h
// file_start_write / file_end_write (sb_start_write).
//
// Model: the syscall layer workloads call. read(2)/write(2) use and advance the file position under
// f_pos_lock; pread/pwrite take an explicit position. Writes hold sb_writers (read side) around the write.
// Each level pushes its kernel frame, so hung-task traces end in vfs_read / vfs_write and the syscall.
// Differs: a file is always shared (f_pos_lock is always taken by read/write, as when file_count > 1).
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>fs/read_write.c: the read and write syscalls.</summary>
public static class ReadWrite
{
    /// <summary>read(2): reads at the file position and advances it.</summary>
    public static long SysRead(VfsFile file, Span<byte> buf)
    {
        using KFrame frame = KFunc.Enter("SyS_read");
        FdgetPos(file);
        try
        {
            long pos = file.Pos;
            long ret = VfsRead(file, buf, ref pos);
            if (ret >= 0)
            {
                file.Pos = pos;
            }

            return ret;
        }
        finally
        {
            file.FPosLock.Unlock();
        }
    }

    /// <summary>write(2): writes at the file position (EOF with O_APPEND) and advances it.</summary>
    public static long SysWrite(VfsFile file, ReadOnlySpan<byte> buf)
    {
        using KFrame frame = KFunc.Enter("SyS_write");
        FdgetPos(file);
        try
        {
            long pos = file.Pos;
            long ret = VfsWrite(file, buf, ref pos);
            if (ret >= 0)
            {
                file.Pos = pos;
            }

            return ret;
        }
        finally
        {
            file.FPosLock.Unlock();
        }
    }

    /// <summary>pread64(2).</summary>
    public static long SysPread64(VfsFile file, Span<byte> buf, long pos)
    {
        using KFrame frame = KFunc.Enter("SyS_pread64");
        return pos < 0 ? -Errno.EINVAL : VfsRead(file, buf, ref pos);
    }

    /// <summary>pwrite64(2).</summary>
    public static long SysPwrite64(VfsFile file, ReadOnlySpan<byte> buf, long pos)
    {
        using KFrame frame = KFunc.Enter("SyS_pwrite64");
        return pos < 0 ? -Errno.EINVAL : VfsWrite(file, buf, ref pos);
    }

    /// <summary>vfs_read(): reads into <paramref name="buf"/> at <paramref name="pos"/>, advancing it.</summary>
    public static long VfsRead(VfsFile file, Span<byte> buf, ref long pos) => VfsRead(file, buf, ref pos, KiocbFlags.None, KiocbFlags.None);

    /// <summary>
    /// vfs_read() with the kiocb flags in <paramref name="mask"/> replaced by those in <paramref name="flags"/>
    /// (e.g. O_DIRECT for this call only, as preadv2 flags later allowed).
    /// </summary>
    public static long VfsRead(VfsFile file, Span<byte> buf, ref long pos, KiocbFlags flags, KiocbFlags mask)
    {
        using KFrame frame = KFunc.Enter("vfs_read");
        using KFrame inner = KFunc.Enter("__vfs_read");
        // new_sync_read()
        var kiocb = new Kiocb(file, pos);
        kiocb.KiFlags = (kiocb.KiFlags & ~mask) | (flags & mask);
        var iter = new IovIter(buf);
        long ret = file.FOp.ReadIter(ref kiocb, ref iter);
        pos = kiocb.KiPos;
        return ret;
    }

    /// <summary>vfs_write(): writes <paramref name="buf"/> at <paramref name="pos"/> under sb_writers, advancing it.</summary>
    public static long VfsWrite(VfsFile file, ReadOnlySpan<byte> buf, ref long pos)
    {
        using KFrame frame = KFunc.Enter("vfs_write");
        SuperBlock sb = file.Inode.Sb;
        FileStartWrite(sb);
        try
        {
            using KFrame inner = KFunc.Enter("__vfs_write");
            // new_sync_write()
            var kiocb = new Kiocb(file, pos);
            var iter = new IovIter(buf);
            long ret = file.FOp.WriteIter(ref kiocb, ref iter);
            if (ret > 0)
            {
                pos = kiocb.KiPos;
            }

            return ret;
        }
        finally
        {
            sb.SWriters.UpRead();
        }
    }

    // file_start_write() -> __sb_start_write(sb, SB_FREEZE_WRITE).
    internal static void FileStartWrite(SuperBlock sb)
    {
        using KFrame frame = KFunc.Enter("__sb_start_write");
        sb.SWriters.DownRead();
    }

    // __fdget_pos()
    private static void FdgetPos(VfsFile file)
    {
        using KFrame frame = KFunc.Enter("__fdget_pos");
        file.FPosLock.Lock();
    }
}
