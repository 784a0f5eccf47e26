// Mirrors: include/linux/fs.h (v4.4) struct address_space and struct address_space_operations, and
// mm/filemap.c mapping_set_error / filemap_check_errors.
//
// Model: an inode's page cache: a radix tree of pages with the DIRTY / WRITEBACK / TOWRITE tags under
// tree_lock, the page count, the cyclic writeback position, sticky error bits (AS_EIO, AS_ENOSPC) that
// writeback sets and fsync/fdatawait report once, and the filesystem's operations.
//
// Locking legend: T = TreeLock (mapping->tree_lock).
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>struct address_space_operations: what the generic page-cache code asks the filesystem to do.</summary>
public interface IAddressSpaceOperations
{
    /// <summary>->writepages(): writes dirty pages of the mapping as <paramref name="wbc"/> asks.</summary>
    int WritePages(AddressSpace mapping, WritebackControl wbc);

    /// <summary>->readpage(): starts reading a locked page; the page is unlocked when the read ends.</summary>
    int ReadPage(VfsFile? file, Page page);

    /// <summary>->releasepage(): drops the filesystem's private state of a clean page; false if it cannot.</summary>
    bool ReleasePage(Page page);

    /// <summary>->direct_IO(): O_DIRECT read or write at iocb.KiPos; bytes done, 0 to fall back to buffered, or -errno.</summary>
    long DirectIO(ref Kiocb iocb, ref IovIter iter);
}

/// <summary>struct address_space: an inode's page cache.</summary>
public sealed class AddressSpace
{
    private const int AsEio = 1 << 0;    // AS_EIO
    private const int AsEnospc = 1 << 1; // AS_ENOSPC

    internal readonly Lock TreeLock = new();     // mapping->tree_lock
    internal readonly RadixTree<Page> PageTree = new(); // T: page_tree
    internal long NrPages;                       // T
    private long _writebackIndex;                // writeback_index: where cyclic writeback resumes
    private int _flags;                          // Interlocked: AS_EIO | AS_ENOSPC

    /// <param name="host">The owning inode.</param>
    /// <param name="zone">The memory zone its pages come from.</param>
    /// <param name="aops">The filesystem's address-space operations.</param>
    public AddressSpace(VfsInode host, Zone zone, IAddressSpaceOperations aops)
    {
        Host = host;
        Zone = zone;
        Aops = aops;
    }

    /// <summary>mapping->host.</summary>
    public VfsInode Host { get; }

    /// <summary>The inode number, for messages.</summary>
    public long InodeNumber => Host.Ino;

    /// <summary>The zone pages are allocated from.</summary>
    public Zone Zone { get; }

    /// <summary>mapping->a_ops.</summary>
    public IAddressSpaceOperations Aops { get; }

    /// <summary>nrpages.</summary>
    public long NrPagesCount
    {
        get
        {
            lock (TreeLock)
            {
                return NrPages;
            }
        }
    }

    /// <summary>writeback_index, in pages.</summary>
    public long WritebackIndex
    {
        get => Volatile.Read(ref _writebackIndex);
        set => Volatile.Write(ref _writebackIndex, value);
    }

    /// <summary>mapping_tagged(): whether any page carries <paramref name="tag"/>.</summary>
    public bool MappingTagged(PageCacheTag tag)
    {
        lock (TreeLock)
        {
            return PageTree.Tagged(tag);
        }
    }

    /// <summary>Whether the page at <paramref name="index"/> carries <paramref name="tag"/> (radix_tree_tag_get).</summary>
    public bool PageTagged(long index, PageCacheTag tag)
    {
        lock (TreeLock)
        {
            return PageTree.TagGet(index, tag);
        }
    }

    /// <summary>mapping_set_error(): records a writeback error for the next fsync / fdatawait.</summary>
    public void SetError(int error)
    {
        if (error == -Errno.ENOSPC)
        {
            Interlocked.Or(ref _flags, AsEnospc);
        }
        else if (error != 0)
        {
            Interlocked.Or(ref _flags, AsEio);
        }
    }

    /// <summary>filemap_check_errors(): reports and clears a recorded writeback error.</summary>
    public int CheckErrors()
    {
        int ret = 0;
        if ((Volatile.Read(ref _flags) & AsEnospc) != 0 && (Interlocked.And(ref _flags, ~AsEnospc) & AsEnospc) != 0)
        {
            ret = -Errno.ENOSPC;
        }

        if ((Volatile.Read(ref _flags) & AsEio) != 0 && (Interlocked.And(ref _flags, ~AsEio) & AsEio) != 0)
        {
            ret = -Errno.EIO;
        }

        return ret;
    }
}
