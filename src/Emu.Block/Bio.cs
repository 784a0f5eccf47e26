// Mirrors: include/linux/blk_types.h (v4.4) struct bio and block/bio.c (v4.4): bio_alloc_bioset, bio_put,
// bio_reset, bio_add_page, bio_advance, bio_chain, bio_endio, bio_split, bio_clone_fast.
//
// Model: a bio is one I/O as a filesystem sees it: an operation, a start sector, a vector of memory pieces and a
// completion callback (bi_end_io) with its private pointer. The block layer turns bios into requests, merging
// contiguous ones; when the device is done it sets bi_error and calls bio_endio, which calls bi_end_io in
// completion context. Bios come from a BioSet pool and go back to it on the last bio_put. A split or clone shares
// its parent's vectors; bio_chain makes the parent complete only once every chained child has (__bi_remaining).
// Differs: bi_end_io is an Action<Bio> the caller caches once (a static lambda or a stored delegate), so no
// closure is made per I/O; bi_error is v4.4's (0 or -errno). Vectors live inline in the pooled bio (the pool's
// size class, see BioSet) instead of in a separately allocated bvec.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Emu.Kernel;

namespace Emu.Block;

/// <summary>struct bio: one block I/O and its completion callback.</summary>
public sealed class Bio
{
    // bio_chain_endio(): a sentinel compared by reference; bio_endio walks up to the parent itself.
    internal static readonly Action<Bio> s_chainEndIo = static _ => Debug.Fail("bio_chain_endio is never called");

    private readonly BioVec[] _inlineVecs; // I: this bio's own vectors (bi_inline_vecs)
    private int _refs;                     // __bi_cnt; Interlocked

    internal BvecIter Iter;       // bi_iter: owned by the submitter until submit, then by the block layer
    internal BioVec[] IoVec;      // bi_io_vec: _inlineVecs, or the parent's for a clone
    internal Bio? Next;           // bi_next: the request's bio list, while the bio is in a request
    internal int Remaining;       // __bi_remaining while BioState.Chain is set; Interlocked
    internal BioState State;      // bi_flags; the owner's
    internal int PhysSegments;    // bi_phys_segments, computed by blk_queue_split

    internal Bio(BioSet? pool, int vecCount)
    {
        _inlineVecs = new BioVec[vecCount];
        IoVec = _inlineVecs;
        BiPool = pool;
        BiMaxVecs = vecCount;
        _refs = 1;
    }

    /// <summary>The disk the bio is for (bio->bi_bdev); set before <see cref="BlkCore.SubmitBio"/>.</summary>
    public GenDisk? BiDisk { get; set; }

    /// <summary>The operation (bio_op()).</summary>
    public ReqOp BiOp { get; set; }

    /// <summary>The operation's modifiers (the REQ_* flags of bi_rw).</summary>
    public ReqFlags BiFlags { get; set; }

    /// <summary>Start on the device in 512-byte sectors (bi_iter.bi_sector).</summary>
    public long BiSector
    {
        get => Iter.BiSector;
        set => Iter.BiSector = value;
    }

    /// <summary>Bytes the bio moves (bi_iter.bi_size).</summary>
    public uint BiSize => Iter.BiSize;

    /// <summary>0, or the -errno of the failed I/O (bi_error), set before <see cref="BiEndIo"/> runs.</summary>
    public int BiError { get; set; }

    /// <summary>
    /// Called once when the I/O is complete (bi_end_io), in completion (irq) context: it must not sleep. Cache the
    /// delegate: a lambda capturing per-I/O state allocates on every I/O.
    /// </summary>
    public Action<Bio>? BiEndIo { get; set; }

    /// <summary>The owner's data for <see cref="BiEndIo"/> (bi_private).</summary>
    public object? BiPrivate { get; set; }

    /// <summary>Vectors in use (bi_vcnt).</summary>
    public int BiVcnt { get; private set; }

    /// <summary>Vectors this bio can hold (bi_max_vecs).</summary>
    public int BiMaxVecs { get; private set; }

    /// <summary>The pool the bio returns to on its last <see cref="Put"/> (bi_pool); null for one-off bios.</summary>
    public BioSet? BiPool { get; }

    /// <summary>Vectors the bio's own array holds (its biovec slab size).</summary>
    internal int VecCapacity => _inlineVecs.Length;

    /// <summary>The vectors this bio added (bio_for_each_segment_all). A clone has none of its own.</summary>
    public ReadOnlySpan<BioVec> Vecs => IoVec.AsSpan(0, BiVcnt);

    /// <summary>bio_alloc(): a bio from the filesystem pool (fs_bio_set) with room for <paramref name="nrVecs"/> vectors.</summary>
    public static Bio Alloc(int nrVecs) => BioSet.Fs.Alloc(nrVecs);

    /// <summary>
    /// bio_add_page(): appends <paramref name="len"/> bytes of <paramref name="page"/> at <paramref name="offset"/>,
    /// extending the last vector when it ends where this one starts in the same page.
    /// </summary>
    /// <returns><paramref name="len"/>, or 0 when the bio has no vector left.</returns>
    public uint AddPage(Page page, uint len, uint offset)
    {
        ArgumentNullException.ThrowIfNull(page);
        return AddVec(page, page.Address, len, offset);
    }

    /// <summary>Appends <paramref name="len"/> bytes of native memory at <paramref name="address"/> (no Page).</summary>
    /// <returns><paramref name="len"/>, or 0 when the bio has no vector left.</returns>
    public uint AddBuffer(nint address, uint len) => AddVec(null, address, len, 0);

    /// <summary>bio_get(): takes a reference, so the bio survives its completion until the matching <see cref="Put"/>.</summary>
    public void Get() => Interlocked.Increment(ref _refs);

    /// <summary>bio_put(): drops a reference; the last one returns the bio to its pool.</summary>
    public void Put()
    {
        int refs = Interlocked.Decrement(ref _refs);
        if (refs == 0)
        {
            BiPool?.Free(this);
        }
        else if (refs < 0)
        {
            ThrowHelper.ThrowInvalidOperation("bio_put on a freed bio");
        }
    }

    /// <summary>bio_advance(): drops the first <paramref name="bytes"/> of the bio.</summary>
    public void Advance(uint bytes)
    {
        if (bytes > Iter.BiSize)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(bytes), "bio_advance past the end of the bio");
        }

        Iter.Advance(IoVec, bytes);
    }

    /// <summary>
    /// bio_chain(): makes <paramref name="parent"/> complete only after this bio has, passing this bio's error up.
    /// This bio's <see cref="BiEndIo"/> and <see cref="BiPrivate"/> are taken over.
    /// </summary>
    public void Chain(Bio parent)
    {
        ArgumentNullException.ThrowIfNull(parent);
        BiPrivate = parent;
        BiEndIo = s_chainEndIo;
        parent.IncRemaining();
    }

    /// <summary>
    /// bio_split(): a new bio from <paramref name="bs"/> for the first <paramref name="sectors"/> of this one, sharing
    /// its vectors; this bio is advanced past them. Chain the split to the original (<see cref="Chain"/>) unless the
    /// caller completes both itself.
    /// </summary>
    public Bio Split(int sectors, BioSet bs)
    {
        ArgumentNullException.ThrowIfNull(bs);
        uint bytes = (uint)sectors << Blk.SectorShift;
        if (sectors <= 0 || bytes >= Iter.BiSize)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(sectors), "bio_split must leave something on both sides");
        }

        Bio split = bs.CloneFast(this);
        split.Iter.BiSize = bytes;
        Advance(bytes);
        return split;
    }

    /// <summary>bio_io_error(): completes the bio at once with -EIO.</summary>
    public void IoError()
    {
        BiError = -KErrno.EIO;
        Endio(this);
    }

    /// <summary>
    /// bio_endio(): the bio is done; calls <see cref="BiEndIo"/> unless chained children are still in flight, and
    /// walks up chains iteratively (no recursion per level).
    /// </summary>
    public static void Endio(Bio bio)
    {
        Sched.Point(SchedPoint.EndIo);
        Bio? current = bio;
        while (current is not null)
        {
            if (!current.RemainingDone())
            {
                return;
            }

            if (ReferenceEquals(current.BiEndIo, s_chainEndIo))
            {
                // bio_chain_endio(): the first error of any child is the parent's.
                var parent = (Bio)current.BiPrivate!;
                if (current.BiError != 0 && parent.BiError == 0)
                {
                    parent.BiError = current.BiError;
                }

                current.Put();
                current = parent;
                continue;
            }

            current.BiEndIo?.Invoke(current);
            current = null;
        }
    }

    // bio_inc_remaining()
    internal void IncRemaining()
    {
        if ((State & BioState.Chain) == 0)
        {
            Volatile.Write(ref Remaining, 1);
            State |= BioState.Chain;
        }

        Interlocked.Increment(ref Remaining);
    }

    // bio_remaining_done()
    private bool RemainingDone()
    {
        if ((State & BioState.Chain) == 0)
        {
            return true;
        }

        Debug.Assert(Volatile.Read(ref Remaining) > 0, "bio completed more often than chained");
        if (Interlocked.Decrement(ref Remaining) == 0)
        {
            State &= ~BioState.Chain;
            return true;
        }

        return false;
    }

    // bio_clone_fast(): this bio becomes a clone of source, sharing its vectors.
    internal void InitClone(Bio source)
    {
        IoVec = source.IoVec;
        Iter = source.Iter;
        BiDisk = source.BiDisk;
        BiOp = source.BiOp;
        BiFlags = source.BiFlags;
        BiMaxVecs = 0;
        State = BioState.Cloned | (source.State & BioState.FailInject);
    }

    // bio_init() for a bio leaving the pool with room for nrVecs vectors.
    internal void InitAlloc(int nrVecs)
    {
        BiMaxVecs = nrVecs;
        _refs = 1;
    }

    // bio_reset() plus the return to the pool: everything the next owner must not see.
    internal void ResetForPool()
    {
        Array.Clear(_inlineVecs, 0, BiVcnt);
        IoVec = _inlineVecs;
        Iter = default;
        Next = null;
        Remaining = 0;
        State = BioState.None;
        PhysSegments = 0;
        BiDisk = null;
        BiOp = ReqOp.Read;
        BiFlags = ReqFlags.None;
        BiError = 0;
        BiEndIo = null;
        BiPrivate = null;
        BiVcnt = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint AddVec(Page? page, nint baseAddress, uint len, uint offset)
    {
        if ((State & BioState.Cloned) != 0)
        {
            ThrowHelper.ThrowInvalidOperation("a cloned bio shares its parent's vectors and cannot grow");
        }

        if (len == 0 || Iter.BiSize + (ulong)len > uint.MaxValue)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(len), "a vector needs 1 byte or more, and a bio at most 4 GiB");
        }

        int vcnt = BiVcnt;
        if (vcnt > 0)
        {
            ref BioVec prev = ref _inlineVecs[vcnt - 1];
            if (ReferenceEquals(prev.BvPage, page) && prev.Address + (nint)prev.BvLen == baseAddress + (nint)offset)
            {
                prev.BvLen += len;
                Iter.BiSize += len;
                return len;
            }
        }

        if (vcnt >= BiMaxVecs)
        {
            return 0;
        }

        ref BioVec bv = ref _inlineVecs[vcnt];
        bv.BvPage = page;
        bv.BvBase = baseAddress;
        bv.BvLen = len;
        bv.BvOffset = offset;
        BiVcnt = vcnt + 1;
        Iter.BiSize += len;
        return len;
    }
}

/// <summary>Block-layer state bits of a bio (bi_flags, BIO_*).</summary>
[Flags]
internal enum BioState : byte
{
    None = 0,

    /// <summary>__bi_remaining counts chained children. BIO_CHAIN.</summary>
    Chain = 1 << 0,

    /// <summary>Shares another bio's vectors. BIO_CLONED.</summary>
    Cloned = 1 << 1,

    /// <summary>Chosen by fault injection to fail (fail_make_request's should_fail).</summary>
    FailInject = 1 << 2,
}
