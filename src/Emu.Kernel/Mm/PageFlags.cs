// Mirrors: include/linux/page-flags.h (v4.4) enum pageflags. Masks are 1 << the kernel's bit number, so a
// flag's bit (for bit waits) is BitOperations.Log2 of its mask.
namespace Emu.Kernel;

/// <summary>struct page flags.</summary>
[Flags]
public enum PageFlags : long
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>Page is locked; don't touch. PG_locked.</summary>
    Locked = 1L << 0,

    /// <summary>An I/O error occurred. PG_error.</summary>
    Error = 1L << 1,

    /// <summary>Recently accessed. PG_referenced.</summary>
    Referenced = 1L << 2,

    /// <summary>Contents are valid. PG_uptodate.</summary>
    Uptodate = 1L << 3,

    /// <summary>Contents differ from disk. PG_dirty.</summary>
    Dirty = 1L << 4,

    /// <summary>On an LRU list. PG_lru.</summary>
    Lru = 1L << 5,

    /// <summary>page->private holds filesystem data (btrfs: extent-mapped). PG_private.</summary>
    Private = 1L << 11,

    /// <summary>Filesystem-defined; btrfs: an ordered extent covers the page. PG_private_2.</summary>
    Private2 = 1L << 12,

    /// <summary>Under writeback I/O. PG_writeback.</summary>
    Writeback = 1L << 13,
}
