// Mirrors: fs/direct-io.c (v4.4): __blockdev_direct_IO, do_blockdev_direct_IO, do_direct_IO,
// get_more_blocks, submit_page_section, dio_send_cur_page, dio_new_bio, dio_bio_add_page, dio_bio_submit,
// dio_end_io, dio_bio_end_io, dio_await_one, dio_await_completion, dio_bio_complete, dio_complete.
//
// Model: a synchronous direct IO walks the request block by block (i_blkbits = 12). When no mapped blocks
// are left it asks the filesystem's get_block for the rest of the request; btrfs answers reads one block at a
// time and keeps each answered block's range locked. A mapped block becomes the "current page section";
// sections are merged into one bio while they continue it on disk and in the file, and the bio is submitted
// (through the filesystem's submit_io) only when the next section does not continue it, when it is full,
// or at the end. So while get_block runs for block N+1, block N is locked and its bio not yet submitted.
// An unmapped block of a read is a hole (zero-filled) unless it lies past EOF; a get_block error stops the
// walk, and -ENOTBLK is not an error: what was mapped is submitted, waited for, and the short count returned
// for the caller to finish through the page cache. The submitter sleeps until every bio has completed
// (completion wakes it; it reaps and accounts each bio itself), then returns the bytes done, clipped at i_size.
// Differs: user memory is not pinned: each 4 KiB of the user buffer is backed by a bounce frame from the
// zone (filled from the buffer for writes, copied back for reads once the I/O is complete), so user buffers
// need no alignment; only synchronous DIO (no AIO, no -EIOCBQUEUED); no DIO_LOCKING / DIO_SKIP_HOLES users.
//
// Locking legend: B = BioLock (dio->bio_lock).
using Emu.Block;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>The mapping a get_block call returns (the buffer_head fields direct IO uses).</summary>
public struct BufferHead
{
    /// <summary>b_size: in, bytes wanted; out, bytes mapped.</summary>
    public long BSize;

    /// <summary>b_blocknr: disk block of the first byte (in i_blkbits units).</summary>
    public long BBlocknr;

    /// <summary>buffer_mapped().</summary>
    public bool Mapped;

    /// <summary>buffer_new(): newly allocated.</summary>
    public bool New;
}

/// <summary>get_block_t: maps file block <paramref name="iblock"/> onward; 0 or -errno.</summary>
public delegate int GetBlockFn(VfsInode inode, long iblock, ref BufferHead bhResult, bool create);

/// <summary>dio_submit_t: submits a direct-IO bio for the file range starting at <paramref name="fileOffset"/>.</summary>
public delegate void DioSubmitFn(Bio bio, VfsInode inode, long fileOffset);

/// <summary>struct dio + struct dio_submit: one synchronous direct IO in progress.</summary>
public sealed class Dio : IWaitResource
{
    internal readonly Lock BioLock = new();         // dio->bio_lock
    internal readonly Queue<Bio> BioList = new();  // B: completed bios, reaped by the submitter
    internal readonly WaitQueueHead Wq;            // the submitter sleeps here (dio->waiter)
    internal int Refcount = 1;                      // B: the submitter's reference + one per bio in flight
    internal int IoError;                           // written by the submitter when reaping
    internal long Result;                           // bytes mapped or zero-filled so far
    internal readonly nint[] Frames;                // bounce frame of each user page (0: not yet)
    internal readonly bool[] BlockDone;             // per user page: data (or zeros) belongs in the user buffer

    internal Dio(VfsInode inode, ReqOp rw, long offset, int count)
    {
        Inode = inode;
        Rw = rw;
        Offset = offset;
        Count = count;
        Wq = new WaitQueueHead(this);
        int pages = (count + Page.PageSize - 1) / Page.PageSize;
        Frames = new nint[pages];
        BlockDone = new bool[pages];
    }

    /// <summary>dio->inode.</summary>
    public VfsInode Inode { get; }

    /// <summary>dio->rw.</summary>
    public ReqOp Rw { get; }

    /// <summary>File offset of the request.</summary>
    public long Offset { get; }

    /// <summary>Bytes requested.</summary>
    public int Count { get; }

    internal long ISize;                 // dio->i_size, sampled at the start
    internal Bio? Bio;                   // sdio->bio being built
    internal long LogicalOffsetInBio;    // sdio->logical_offset_in_bio
    internal long FinalBlockInBio;       // sdio->final_block_in_bio
    internal int CurPage = -1;           // sdio->cur_page (user page index), -1 for none
    internal long CurPageBlock;          // sdio->cur_page_block
    internal long CurPageFsOffset;       // sdio->cur_page_fs_offset
    internal int CurPageLen;             // sdio->cur_page_len
    internal DioSubmitFn SubmitIo = null!; // sdio->submit_io

    /// <inheritdoc />
    public string Describe() => $"direct IO {(Rw == ReqOp.Read ? "read" : "write")} [{Offset}, {Offset + Count - 1}] of inode {Inode.Ino}";

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
    }
}

/// <summary>fs/direct-io.c.</summary>
public static class DirectIo
{
    private static readonly Action<Bio> s_dioBioEndIo = DioBioEndIo;

    /// <summary>
    /// __blockdev_direct_IO(): a synchronous direct IO of <paramref name="iter"/> at iocb.KiPos through
    /// <paramref name="getBlock"/> and <paramref name="submitIo"/>.
    /// </summary>
    /// <returns>Bytes done (possibly fewer than asked, e.g. after -ENOTBLK), or -errno.</returns>
    public static long __BlockdevDirectIO(ref Kiocb iocb, VfsInode inode, ref IovIter iter, ReqOp rw, GetBlockFn getBlock, DioSubmitFn submitIo)
    {
        using KFrame frame = KFunc.Enter("__blockdev_direct_IO");
        return DoBlockdevDirectIO(ref iocb, inode, ref iter, rw, getBlock, submitIo);
    }

    /// <summary>
    /// dio_end_io(): the filesystem finished a direct-IO bio it was given by submit_io (may run in completion
    /// context): queue it for the submitter to reap and wake the submitter when it was the last.
    /// </summary>
    public static void DioEndIo(Bio bio, int error)
    {
        bio.BiError = error;
        DioBioEndIo(bio);
    }

    // do_blockdev_direct_IO()
    private static long DoBlockdevDirectIO(ref Kiocb iocb, VfsInode inode, ref IovIter iter, ReqOp rw, GetBlockFn getBlock, DioSubmitFn submitIo)
    {
        using KFrame frame = KFunc.Enter("do_blockdev_direct_IO");
        long offset = iocb.KiPos;
        int count = iter.Count;
        if (rw == ReqOp.Read && count == 0)
        {
            return 0;
        }

        var dio = new Dio(inode, rw, offset, count) { SubmitIo = submitIo };
        // Once i_size is sampled, reads beyond EOF are done.
        dio.ISize = inode.ISize;
        if (rw == ReqOp.Read && offset >= dio.ISize)
        {
            return 0;
        }

        Zone zone = inode.Mapping.Zone;
        long retval;
        try
        {
            retval = DoDirectIO(dio, zone, ref iter, getBlock);
            if (retval == -Errno.ENOTBLK)
            {
                // Writes beyond EOF or into holes, or (btrfs) anything the filesystem wants done buffered:
                // the part already mapped goes ahead; the caller handles the rest.
                retval = 0;
            }

            if (dio.CurPage >= 0)
            {
                int ret2 = DioSendCurPage(dio, zone);
                if (retval == 0)
                {
                    retval = ret2;
                }

                dio.CurPage = -1;
            }

            if (dio.Bio is not null)
            {
                DioBioSubmit(dio);
            }

            DioAwaitCompletion(dio);
            if (rw == ReqOp.Read)
            {
                CopyToUser(dio, zone, iter.Remaining);
            }

            retval = DioComplete(dio, offset, retval);
            BtrfsMetrics.NoteDirectIo(inode, rw, retval);
        }
        finally
        {
            foreach (nint f in dio.Frames)
            {
                if (f != 0)
                {
                    zone.FreePage(f);
                }
            }
        }

        return retval;
    }

    // do_direct_IO(): maps and queues block after block until the request is done or get_block fails.
    private static int DoDirectIO(Dio dio, Zone zone, ref IovIter iter, GetBlockFn getBlock)
    {
        const int blkbits = Page.PageShift;
        long blockInFile = dio.Offset >> blkbits;
        long finalBlockInRequest = (dio.Offset + dio.Count) >> blkbits;
        long blocksAvailable = 0;
        long nextBlockForIo = 0;
        var mapBh = default(BufferHead);
        for (int page = 0; blockInFile < finalBlockInRequest; page++)
        {
            if (blocksAvailable == 0)
            {
                // get_more_blocks(): ask for everything left of the request.
                mapBh = new BufferHead { BSize = (finalBlockInRequest - blockInFile) << blkbits };
                int ret = getBlock(dio.Inode, blockInFile, ref mapBh, dio.Rw == ReqOp.Write);
                if (ret != 0)
                {
                    return ret;
                }

                if (mapBh.Mapped)
                {
                    blocksAvailable = mapBh.BSize >> blkbits;
                    nextBlockForIo = mapBh.BBlocknr;
                }
            }

            if (!mapBh.Mapped)
            {
                // A hole.
                if (dio.Rw == ReqOp.Write)
                {
                    return -Errno.ENOTBLK;
                }

                long iSizeAligned = Inode.AlignUp(dio.Inode.ISize, 1 << blkbits);
                if (blockInFile >= iSizeAligned >> blkbits)
                {
                    return 0; // EOF
                }

                DioGetPage(dio, zone, page, ref iter).Clear();
                dio.BlockDone[page] = true;
                blockInFile++;
                dio.Result += 1 << blkbits;
                continue;
            }

            DioGetPage(dio, zone, page, ref iter);
            int err = SubmitPageSection(dio, zone, page, 1 << blkbits, nextBlockForIo, blockInFile << blkbits);
            if (err != 0)
            {
                return err;
            }

            dio.BlockDone[page] = true;
            nextBlockForIo++;
            blockInFile++;
            dio.Result += 1 << blkbits;
            blocksAvailable--;
        }

        return 0;
    }

    // dio_get_page(): the bounce frame backing user page `page`, filled from the user buffer for writes.
    private static Span<byte> DioGetPage(Dio dio, Zone zone, int page, ref IovIter iter)
    {
        if (dio.Frames[page] == 0)
        {
            nint frame = zone.AllocPage();
            dio.Frames[page] = frame;
            if (dio.Rw == ReqOp.Write)
            {
                int off = page * Page.PageSize;
                ReadOnlySpan<byte> user = iter.Remaining;
                user.Slice(off, Math.Min(Page.PageSize, user.Length - off)).CopyTo(zone.FrameSpan(frame));
            }
        }

        return zone.FrameSpan(dio.Frames[page]);
    }

    // submit_page_section(): makes the block the current section, sending the previous one.
    private static int SubmitPageSection(Dio dio, Zone zone, int page, int len, long blocknr, long fsOffset)
    {
        int ret = 0;
        if (dio.CurPage >= 0)
        {
            ret = DioSendCurPage(dio, zone);
            dio.CurPage = -1;
            if (ret != 0)
            {
                return ret;
            }
        }

        dio.CurPage = page;
        dio.CurPageLen = len;
        dio.CurPageBlock = blocknr;
        dio.CurPageFsOffset = fsOffset;
        return ret;
    }

    // dio_send_cur_page(): adds the current section to the bio, submitting the bio first if the section does
    // not continue it on disk and in the file (btrfs cannot take logically discontiguous bios).
    private static int DioSendCurPage(Dio dio, Zone zone)
    {
        if (dio.Bio is { } bio)
        {
            long bioNextOffset = dio.LogicalOffsetInBio + bio.BiSize;
            if (dio.FinalBlockInBio != dio.CurPageBlock || dio.CurPageFsOffset != bioNextOffset)
            {
                DioBioSubmit(dio);
            }
        }

        if (dio.Bio is null)
        {
            DioNewBio(dio, dio.CurPageBlock);
        }

        if (!DioBioAddPage(dio))
        {
            DioBioSubmit(dio);
            DioNewBio(dio, dio.CurPageBlock);
            DioBioAddPage(dio);
        }

        return 0;
    }

    // dio_new_bio()
    private static void DioNewBio(Dio dio, long startBlock)
    {
        Bio bio = Bio.Alloc(Blk.BioMaxPages);
        bio.BiOp = dio.Rw;
        bio.BiSector = (startBlock << Page.PageShift) >> Blk.SectorShift;
        bio.BiPrivate = dio;
        bio.BiEndIo = s_dioBioEndIo;
        dio.Bio = bio;
        dio.LogicalOffsetInBio = dio.CurPageFsOffset;
    }

    // dio_bio_add_page()
    private static bool DioBioAddPage(Dio dio)
    {
        if (dio.Bio!.AddBuffer(dio.Frames[dio.CurPage], (uint)dio.CurPageLen) == 0)
        {
            return false;
        }

        dio.FinalBlockInBio = dio.CurPageBlock + (dio.CurPageLen >> Page.PageShift);
        return true;
    }

    // dio_bio_submit(): hands the bio to the filesystem's submit_io.
    private static void DioBioSubmit(Dio dio)
    {
        Bio bio = dio.Bio!;
        lock (dio.BioLock)
        {
            dio.Refcount++;
        }

        dio.Bio = null;
        dio.SubmitIo(bio, dio.Inode, dio.LogicalOffsetInBio);
    }

    // dio_bio_end_io(): completion context; the submitter reaps the bio.
    private static void DioBioEndIo(Bio bio)
    {
        var dio = (Dio)bio.BiPrivate!;
        bool wake;
        lock (dio.BioLock)
        {
            dio.BioList.Enqueue(bio);
            wake = --dio.Refcount == 1;
        }

        if (wake)
        {
            Wait.WakeUpAll(dio.Wq);
        }
    }

    // dio_await_completion(): reaps every bio, sleeping until each completes.
    private static void DioAwaitCompletion(Dio dio)
    {
        while (DioAwaitOne(dio) is { } bio)
        {
            DioBioComplete(dio, bio);
        }
    }

    // dio_await_one(): the next completed bio, sleeping (uninterruptible, as I/O wait) while bios are in flight
    // and none has completed; null when none is left.
    private static Bio? DioAwaitOne(Dio dio)
    {
        EmuTask task = EmuTask.CurrentOrThrow;
        while (true)
        {
            Wait.PrepareToWait(dio.Wq, task.WaitEntry, TaskState.Uninterruptible);
            lock (dio.BioLock)
            {
                if (dio.BioList.TryDequeue(out Bio? bio))
                {
                    Wait.FinishWait(dio.Wq, task.WaitEntry);
                    return bio;
                }

                if (dio.Refcount <= 1)
                {
                    Wait.FinishWait(dio.Wq, task.WaitEntry);
                    return null;
                }
            }

            Sched.IoSchedule();
        }
    }

    // dio_bio_complete()
    private static void DioBioComplete(Dio dio, Bio bio)
    {
        if (bio.BiError != 0)
        {
            dio.IoError = -Errno.EIO;
        }

        bio.Put();
    }

    // Emu: the user pages were bounced; copy each completed block back.
    private static void CopyToUser(Dio dio, Zone zone, Span<byte> user)
    {
        for (int page = 0; page < dio.BlockDone.Length; page++)
        {
            if (!dio.BlockDone[page])
            {
                break;
            }

            int off = page * Page.PageSize;
            int len = Math.Min(Page.PageSize, user.Length - off);
            zone.FrameSpan(dio.Frames[page])[..len].CopyTo(user.Slice(off, len));
        }
    }

    // dio_complete(): bytes done, clipped at i_size for reads; else the first error.
    private static long DioComplete(Dio dio, long offset, long ret)
    {
        long transferred = 0;
        if (dio.Result != 0)
        {
            transferred = dio.Result;
            if (dio.Rw == ReqOp.Read && offset + transferred > dio.ISize)
            {
                transferred = dio.ISize - offset;
            }
        }

        if (ret == 0)
        {
            ret = dio.IoError;
        }

        if (ret == 0)
        {
            ret = transferred;
        }

        return ret;
    }
}
