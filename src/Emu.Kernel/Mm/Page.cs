// Mirrors: include/linux/mm_types.h (v4.4) struct page, for page-cache pages.
//
// Model: a page carries its flags word (atomic bit operations), its index in the file, a reference to its
// mapping owner (the address_space; null once truncated) and the inode number for messages, page->private,
// and the native address of its 4 KiB of data, which is allocated and freed elsewhere (the page cache).
// Emu additions: the task holding PG_locked is recorded (LockOwner) for reports and the wait-for graph, and
// a page is the IWaitResource of its lock ("page 2 of inode 257"); PG_writeback waits use WritebackWait.
namespace Emu.Kernel;

/// <summary>struct page.</summary>
public sealed class Page : IWaitResource
{
    /// <summary>PAGE_SIZE.</summary>
    public const int PageSize = 4096;

    /// <summary>PAGE_SHIFT.</summary>
    public const int PageShift = 12;

    internal long FlagsWord;                      // Interlocked / Bitops
    private EmuTask? _lockOwner;                  // written by the locker/unlocker under PG_locked
    private object? _mapping;                     // page->mapping; any task
    private WritebackWaitResource? _writebackWait; // created once on first use

    /// <param name="mapping">The address_space (page cache) owning the page.</param>
    /// <param name="inodeNumber">Owning inode number, for messages.</param>
    /// <param name="index">Offset in the file, in pages (page->index).</param>
    /// <param name="address">Native address of the page's 4 KiB (owned by the caller).</param>
    public Page(object? mapping, long inodeNumber, long index, nint address)
    {
        _mapping = mapping;
        InodeNumber = inodeNumber;
        Index = index;
        Address = address;
    }

    /// <summary>page->index: offset in the file, in pages.</summary>
    public long Index { get; }

    /// <summary>The owning inode's number, for messages.</summary>
    public long InodeNumber { get; }

    /// <summary>page->mapping: the owning address_space, or null once the page was truncated.</summary>
    public object? Mapping
    {
        get => Volatile.Read(ref _mapping);
        set => Volatile.Write(ref _mapping, value);
    }

    /// <summary>Native address of the page data.</summary>
    public nint Address { get; set; }

    /// <summary>page->private (PG_private says whether it is in use).</summary>
    public object? Private { get; set; }

    /// <summary>The current flags.</summary>
    public PageFlags Flags => (PageFlags)Volatile.Read(ref FlagsWord);

    /// <summary>The task holding PG_locked, or null (unlocked, or locked by a host thread).</summary>
    public EmuTask? LockOwner => Volatile.Read(ref _lockOwner);

    /// <summary>What tasks waiting for PG_writeback to clear wait on ("writeback of page 2 of inode 257").</summary>
    public IWaitResource WritebackWait =>
        Volatile.Read(ref _writebackWait) ?? CreateWritebackWait();

    /// <summary>Whether every flag in <paramref name="flags"/> is set (PageLocked(), PageDirty(), ...).</summary>
    public bool Test(PageFlags flags) => ((PageFlags)Volatile.Read(ref FlagsWord) & flags) == flags;

    /// <summary>Sets flags atomically (SetPageDirty(), ...).</summary>
    public void Set(PageFlags flags) => Interlocked.Or(ref FlagsWord, (long)flags);

    /// <summary>Clears flags atomically (ClearPageDirty(), ...).</summary>
    public void Clear(PageFlags flags) => Interlocked.And(ref FlagsWord, ~(long)flags);

    /// <summary>TestSetPage*(): sets one flag, returns whether it was already set.</summary>
    public bool TestAndSet(PageFlags flag) => ((PageFlags)Interlocked.Or(ref FlagsWord, (long)flag) & flag) != 0;

    /// <summary>TestClearPage*(): clears one flag, returns whether it was set.</summary>
    public bool TestAndClear(PageFlags flag) => ((PageFlags)Interlocked.And(ref FlagsWord, ~(long)flag) & flag) != 0;

    /// <inheritdoc />
    public string Describe() => $"page {Index} of inode {InodeNumber}";

    /// <inheritdoc />
    public void AppendHolders(List<EmuTask> holders)
    {
        EmuTask? owner = LockOwner;
        if (owner is not null)
        {
            holders.Add(owner);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Describe();

    internal void SetLockOwner(EmuTask? owner) => Volatile.Write(ref _lockOwner, owner);

    private WritebackWaitResource CreateWritebackWait()
    {
        Interlocked.CompareExchange(ref _writebackWait, new WritebackWaitResource(this), null);
        return _writebackWait!;
    }

    // Writeback is ended by I/O completion, not by a task, so it has no holders.
    private sealed class WritebackWaitResource(Page page) : IWaitResource
    {
        public string Describe() => "writeback of " + page.Describe();

        public void AppendHolders(List<EmuTask> holders)
        {
        }
    }
}
