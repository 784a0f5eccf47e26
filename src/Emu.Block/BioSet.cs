// Mirrors: block/bio.c (v4.4) struct bio_set and the biovec slabs: bioset_create, bio_alloc_bioset, bvec_alloc,
// bio_free, fs_bio_set.
//
// Model: a pool of bios whose vectors come in the kernel's biovec size classes (1, 4, 16, 64, 128 and
// BIO_MAX_PAGES = 256 vectors), capped at the set's maximum. Allocation pops a free bio of the smallest class that
// holds the vectors asked for; the last bio_put pushes it back onto its class. The set starts with poolSize bios of
// the largest class (the mempool reserve) and grows when more are in flight than ever before, as the kernel falls
// back from its mempool to the slab: in steady state no bio is allocated.
// Differs: vectors live inline in the pooled bio rather than in a separately allocated bvec, and the free lists are
// locked stacks instead of slab caches.
using System.Diagnostics;

namespace Emu.Block;

/// <summary>struct bio_set: a pool of bios.</summary>
public sealed class BioSet
{
    private static readonly int[] s_bvecSlabs = [1, 4, 16, 64, 128, Blk.BioMaxPages]; // bvec_slabs[]
    private static readonly Lazy<BioSet> s_fs = new(static () => new BioSet(64, Blk.BioMaxPages));

    private readonly Lock _lock = new();
    private readonly int[] _classes;       // I: vector counts of the size classes, ascending, the last = MaxVecs
    private readonly Bio[][] _free;        // L: _lock; per class, _free[c][0.._count[c]) are free bios
    private readonly int[] _count;         // L: _lock
    private long _created;                 // L: _lock

    /// <summary>bioset_create(): a pool holding <paramref name="poolSize"/> bios of up to <paramref name="maxVecs"/> vectors.</summary>
    public BioSet(int poolSize, int maxVecs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(poolSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxVecs);
        MaxVecs = maxVecs;
        _classes = [.. s_bvecSlabs.Where(n => n < maxVecs), maxVecs];
        _free = new Bio[_classes.Length][];
        _count = new int[_classes.Length];
        for (int c = 0; c < _classes.Length; c++)
        {
            _free[c] = new Bio[4];
        }

        int largest = _classes.Length - 1;
        _free[largest] = new Bio[Math.Max(poolSize, 4)];
        for (int i = 0; i < poolSize; i++)
        {
            _free[largest][i] = new Bio(this, maxVecs);
        }

        _count[largest] = poolSize;
        _created = poolSize;
    }

    /// <summary>The filesystems' pool (fs_bio_set): bios of up to <see cref="Blk.BioMaxPages"/> vectors.</summary>
    public static BioSet Fs => s_fs.Value;

    /// <summary>Most vectors a bio of this set can hold.</summary>
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

        int c = ClassOf(nrVecs);
        Bio? bio;
        lock (_lock)
        {
            int n = _count[c];
            if (n != 0)
            {
                bio = _free[c][--n];
                _free[c][n] = null!;
                _count[c] = n;
            }
            else
            {
                bio = null;
                _created++;
            }
        }

        bio ??= new Bio(this, _classes[c]);
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

    // bio_free(): back onto the free stack of its size class.
    internal void Free(Bio bio)
    {
        Debug.Assert(bio.BiPool == this, "bio freed into another set");
        bio.ResetForPool();
        int c = ClassOf(bio.VecCapacity);
        lock (_lock)
        {
            Bio[] stack = _free[c];
            if (_count[c] == stack.Length)
            {
                Array.Resize(ref _free[c], stack.Length * 2);
            }

            _free[c][_count[c]++] = bio;
        }
    }

    // bvec_slab index: the smallest class holding nrVecs.
    private int ClassOf(int nrVecs)
    {
        int c = 0;
        while (_classes[c] < nrVecs)
        {
            c++;
        }

        return c;
    }
}
