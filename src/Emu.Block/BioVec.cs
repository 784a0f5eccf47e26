// Mirrors: include/linux/blk_types.h (v4.4) struct bio_vec and struct bvec_iter, and the iteration helpers of
// include/linux/bio.h (bvec_iter_bvec, bvec_iter_advance).
//
// Model: a bio_vec names a piece of memory: a page (or any native buffer), a length and an offset into it. A
// bvec_iter is a position in a bio's vector array: the sector the next byte goes to, the bytes left, the vector
// index and how far into that vector. Cloned and split bios share their parent's vectors and differ only in their
// iterator, as in the kernel.
// Differs: a vector holds the native base address as well as the Page, so raw buffers (DIO user buffers, bench
// buffers) need no Page; a vector may span more than one page when its memory is contiguous.
using Emu.Kernel;

namespace Emu.Block;

/// <summary>One piece of a bio's memory (struct bio_vec).</summary>
public struct BioVec
{
    /// <summary>The page the memory belongs to, or null for a raw native buffer (bv_page).</summary>
    public Page? BvPage;

    /// <summary>Native address the offset counts from: the page's address, or the raw buffer's.</summary>
    public nint BvBase;

    /// <summary>Bytes (bv_len).</summary>
    public uint BvLen;

    /// <summary>Offset from <see cref="BvBase"/> (bv_offset).</summary>
    public uint BvOffset;

    /// <summary>Native address of the first byte.</summary>
    public readonly nint Address => BvBase + (nint)BvOffset;
}

/// <summary>A position in a bio's vectors (struct bvec_iter).</summary>
public struct BvecIter
{
    /// <summary>Device address of the next byte, in 512-byte sectors (bi_sector).</summary>
    public long BiSector;

    /// <summary>Bytes left (bi_size).</summary>
    public uint BiSize;

    /// <summary>Current index into the vector array (bi_idx).</summary>
    public int BiIdx;

    /// <summary>Bytes already consumed of the current vector (bi_bvec_done).</summary>
    public uint BiBvecDone;

    /// <summary>
    /// bvec_iter_advance(): moves <paramref name="bytes"/> forward through <paramref name="vecs"/>, keeping the
    /// sector in step.
    /// </summary>
    internal void Advance(BioVec[] vecs, uint bytes)
    {
        BiSector += bytes >> Blk.SectorShift;
        BiSize -= bytes;
        while (bytes > 0)
        {
            uint left = vecs[BiIdx].BvLen - BiBvecDone;
            uint step = Math.Min(left, bytes);
            bytes -= step;
            BiBvecDone += step;
            if (BiBvecDone == vecs[BiIdx].BvLen)
            {
                BiIdx++;
                BiBvecDone = 0;
            }
        }
    }

    /// <summary>
    /// bvec_iter_bvec(): the memory under the iterator, clipped to the bytes left: its address and length.
    /// Only valid while <see cref="BiSize"/> is not 0.
    /// </summary>
    internal readonly (nint Address, uint Len) Current(BioVec[] vecs)
    {
        ref readonly BioVec bv = ref vecs[BiIdx];
        return (bv.Address + (nint)BiBvecDone, Math.Min(bv.BvLen - BiBvecDone, BiSize));
    }
}
