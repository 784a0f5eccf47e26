// Mirrors: block/bio.c (v4.4) struct bio_set: bioset_create, bio_alloc_bioset, bio_free, fs_bio_set.
//
// Model: a pool of bios with a fixed vector count. Allocation pops a free bio; the last bio_put pushes it back.
// The pool starts with poolSize bios and grows when more are in flight than ever before, as the kernel falls back
// from its mempool reserve to the slab: in steady state no bio is allocated.
// Differs: one fixed vector count per set (the kernel picks a bvec slab per allocation), and the free list is a
// locked stack instead of a slab cache plus mempool.
using System.Diagnostics;

namespace Emu.Block;

/// <summary>struct bio_set: a pool of bios.</summary>
public sealed class BioSet
{
    private static readonly Lazy<BioSet> s_fs = new(static () => new BioSet(64, Blk.BioMaxPages));

    private readonly Lock _lock = new();
    private Bio[] _free;   // L: _lock; _free[0.._count) are free bios
    private int _count;    // L: _lock
    private long _created; // L: _lock

    /// <summary>bioset_create(): a pool holding <paramref name="poolSize"/> bios of <paramref name="maxVecs"/> vectors.</summary>
    public BioSet(int poolSize, int maxVecs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(poolSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxVecs);
        MaxVecs = maxVecs;
        _free = new Bio[Math.Max(poolSize, 4)];
        for (int i = 0; i < poolSize; i++)
        {
            _free[i] = new Bio(this, maxVecs);
        }

        _count = poolSize;
        _created = poolSize;
    }

    /// <summary>The filesystems' pool (fs_bio_set): bios of up to <see cref="Blk.BioMaxPages"/> vectors.</summary>
    public static BioSet Fs => s_fs.Value;

    /// <summary>Vectors every bio of this set can hold.</summary>
    public int MaxVecs { get; }

    /// <summary>Bios this set has created so far (pooled and in use); stops growing in steady state.</summary>
    public long Created
    {
        get
        {
            lock (_lock)
            {
                return _created;
            }
        }
    }

    /// <summary>bio_alloc_bioset(): a bio with room for <paramref name="nrVecs"/> vectors and one reference.</summary>
    public Bio Alloc(int nrVecs)
    {
        if ((uint)nrVecs > (uint)MaxVecs)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(nrVecs), $"this bio_set holds bios of at most {MaxVecs} vectors");
        }

        Bio bio = Pop() ?? Create();
        bio.InitAlloc(nrVecs);
        return bio;
    }

    // bio_clone_fast(): a bio sharing source's vectors.
    internal Bio CloneFast(Bio source)
    {
        Bio clone = Alloc(0);
        clone.InitClone(source);
        return clone;
    }

    // bio_free(): back onto the free stack.
    internal void Free(Bio bio)
    {
        Debug.Assert(bio.BiPool == this, "bio freed into another set");
        bio.ResetForPool();
        lock (_lock)
        {
            if (_count == _free.Length)
            {
                Array.Resize(ref _free, _free.Length * 2);
            }

            _free[_count++] = bio;
        }
    }

    private Bio? Pop()
    {
        lock (_lock)
        {
            if (_count == 0)
            {
                return null;
            }

            Bio bio = _free[--_count];
            _free[_count] = null!;
            return bio;
        }
    }

    private Bio Create()
    {
        lock (_lock)
        {
            _created++;
        }

        return new Bio(this, MaxVecs);
    }
}
