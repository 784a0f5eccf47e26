// Mirrors: block/blk-flush.c (v4.4): blk_insert_flush, blk_flush_policy.
//
// Model: a request carrying a cache flush runs as a sequence of stages: PREFLUSH (flush the volatile cache), then
// DATA. Every Emu engine has a volatile cache (the page cache under an O_DIRECT file counts: fdatasync reaches the
// disk) and native FUA (RWF_DSYNC), so a FUA write needs no POSTFLUSH: its data stage carries EMU_IO_FUA. A flush
// without data is a single PREFLUSH stage. The hardware queue issues each stage and requeues the request for the
// next when one completes.
// Differs: flush requests are not merged with each other (v4.4 coalesces concurrent flushes into one flush_rq).
namespace Emu.Block;

/// <summary>Flush sequencing (blk-flush.c).</summary>
internal static class BlkFlush
{
    /// <summary>blk_insert_flush(): sets the stages <paramref name="rq"/> will run.</summary>
    internal static void BlkInsertFlush(Request rq)
    {
        if (rq.Op == ReqOp.Flush)
        {
            rq.Seq = FlushSeq.Preflush;
            return;
        }

        rq.Seq = FlushSeq.Data;
        if ((rq.CmdFlags & ReqFlags.Preflush) != 0)
        {
            rq.Seq |= FlushSeq.Preflush;
        }
    }
}
