// What each block of each file may legally hold, given the writes that happened and those still in flight
// (a happens-before model over one logical clock). A read that starts at S and ends at E may see, in each
// block it covers, the data of any write W of that block that started before E and was not certainly
// overwritten before S - overwritten meaning another write W' of the block started after W ended and itself
// ended before S. "Never written" (zeros) is legal until some write of the block has ended before S. So the
// last completed write before the read is legal, and so is every write overlapping the read in time; writes
// racing each other (concurrent O_DIRECT writes) leave every racer legal until a later write settles it.
// Write payloads identify themselves (Payload), so a mismatch names the write found, or shows none wrote it.
// The model's bookkeeping is the workload's, not the kernel's: it runs in the user tasks between system
// calls, under a lock per file.
namespace Emu.Workloads.Stress;

/// <summary>One data mismatch: a block held a value no write could have left there.</summary>
/// <param name="File">The workload's file index.</param>
/// <param name="Ino">The file's inode number.</param>
/// <param name="Offset">The block's byte offset.</param>
/// <param name="Expected">The legal values, e.g. "write 12 or write 15".</param>
/// <param name="Found">What was there, e.g. "write 9", "zeros (never written)".</param>
/// <param name="Context">Which read found it.</param>
public sealed record Mismatch(int File, long Ino, long Offset, string Expected, string Found, string Context)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"file {File} (inode {Ino}) offset {Offset}: expected {Expected}, found {Found} ({Context})";
}

/// <summary>The shadow model of every file's blocks.</summary>
public sealed class ShadowModel
{
    private const long InFlight = long.MaxValue;

    private readonly FileModel[] _files; // I
    private readonly ulong _seed;        // I
    private long _clock;                 // Interlocked: the logical clock
    private long _nextWriteId;           // Interlocked
    private long _tornBlocks;            // Interlocked

    /// <param name="files">How many files.</param>
    /// <param name="blocksPerFile">Blocks in each file.</param>
    /// <param name="seed">The payload seed.</param>
    public ShadowModel(int files, int blocksPerFile, ulong seed)
    {
        _seed = seed;
        _files = new FileModel[files];
        for (int i = 0; i < files; i++)
        {
            _files[i] = new FileModel(blocksPerFile);
        }
    }

    /// <summary>The payload seed.</summary>
    public ulong Seed => _seed;

    /// <summary>Blocks per file.</summary>
    public int BlocksPerFile => _files[0].Blocks.Length;

    /// <summary>Blocks read torn between legal values (a read racing a write); legal, and counted.</summary>
    public long TornBlocks => Interlocked.Read(ref _tornBlocks);

    /// <summary>Writes begun so far.</summary>
    public long WritesBegun => Interlocked.Read(ref _nextWriteId);

    /// <summary>A write is about to be issued: gives it an id and marks it in flight on its blocks.</summary>
    public WriteTicket BeginWrite(int file, int firstBlock, int blocks)
    {
        long id = Interlocked.Increment(ref _nextWriteId);
        FileModel f = _files[file];
        lock (f)
        {
            long start = Interlocked.Increment(ref _clock);
            for (int b = firstBlock; b < firstBlock + blocks; b++)
            {
                f.Blocks[b].Add(new WriteRecord(id, start, InFlight));
            }
        }

        return new WriteTicket(file, firstBlock, blocks, id);
    }

    /// <summary>
    /// The write returned: <paramref name="blocksDone"/> leading blocks are certainly written (the rest may or
    /// may not be, and stay legal without ever counting as an overwrite).
    /// </summary>
    public void EndWrite(WriteTicket w, int blocksDone)
    {
        FileModel f = _files[w.File];
        lock (f)
        {
            long end = Interlocked.Increment(ref _clock);
            for (int b = w.FirstBlock; b < w.FirstBlock + w.Blocks; b++)
            {
                List<WriteRecord> list = f.Blocks[b];
                int i = list.FindIndex(r => r.Id == w.Id);
                list[i] = list[i] with { End = end, Uncertain = b - w.FirstBlock >= blocksDone };
                Prune(f, list);
            }
        }
    }

    /// <summary>A read is about to be issued: returns its start time and registers it as in flight.</summary>
    public ReadTicket BeginRead(int file)
    {
        FileModel f = _files[file];
        lock (f)
        {
            long start = Interlocked.Increment(ref _clock);
            f.ActiveReads.Add(start);
            return new ReadTicket(file, start);
        }
    }

    /// <summary>
    /// The read returned <paramref name="data"/> for the blocks from <paramref name="firstBlock"/>: checks each
    /// block and adds what no write could have left to <paramref name="mismatches"/>.
    /// </summary>
    /// <returns>Blocks verified correct.</returns>
    public int EndRead(ReadTicket r, long ino, int firstBlock, ReadOnlySpan<byte> data, string context, List<Mismatch> mismatches)
    {
        FileModel f = _files[r.File];
        int blocks = data.Length / Payload.BlockSize;
        int good = 0;
        lock (f)
        {
            long end = Interlocked.Increment(ref _clock);
            for (int i = 0; i < blocks; i++)
            {
                int b = firstBlock + i;
                long offset = (long)b * Payload.BlockSize;
                ReadOnlySpan<byte> block = data.Slice(i * Payload.BlockSize, Payload.BlockSize);
                long found = Payload.Identify(block, _seed, r.File, offset);
                if (IsLegal(f.Blocks[b], found, r.Start, end))
                {
                    good++;
                }
                else if (IsTornBetweenLegalValues(f.Blocks[b], block, r.File, offset, r.Start, end))
                {
                    good++;
                    Interlocked.Increment(ref _tornBlocks);
                }
                else
                {
                    mismatches.Add(new Mismatch(r.File, ino, offset, Legal(f.Blocks[b], r.Start, end),
                        Payload.Describe(block, _seed, r.File, offset), context));
                }
            }

            f.ActiveReads.Remove(r.Start);
            foreach (List<WriteRecord> list in f.Blocks)
            {
                Prune(f, list);
            }
        }

        return good;
    }

    /// <summary>The legal values of a block for a read that starts and ends now (no writes in flight), e.g. "write 7".</summary>
    public string LegalNow(int file, int block)
    {
        FileModel f = _files[file];
        lock (f)
        {
            long now = Interlocked.Increment(ref _clock);
            return Legal(f.Blocks[block], now, now);
        }
    }

    // A read racing a write may see part of each: buffered reads copy from the page without its lock, as a
    // concurrent write copies into it (Linux makes no promise of atomicity there). Such a block is legal when
    // every 8-byte word of it is the same word of some legal value.
    private bool IsTornBetweenLegalValues(List<WriteRecord> list, ReadOnlySpan<byte> block, int file, long offset, long readStart, long readEnd)
    {
        var candidates = new List<byte[]>();
        if (!list.Exists(w => !w.Uncertain && w.End < readStart))
        {
            candidates.Add(new byte[Payload.BlockSize]);
        }

        foreach (WriteRecord w in list)
        {
            if (w.Start < readEnd && !Overwritten(list, w, readStart))
            {
                byte[] c = new byte[Payload.BlockSize];
                Payload.Fill(c, _seed, file, offset, w.Id);
                candidates.Add(c);
            }
        }

        if (candidates.Count < 2)
        {
            return false;
        }

        for (int i = 0; i < Payload.BlockSize; i += 8)
        {
            ReadOnlySpan<byte> word = block.Slice(i, 8);
            bool matched = false;
            foreach (byte[] c in candidates)
            {
                if (word.SequenceEqual(c.AsSpan(i, 8)))
                {
                    matched = true;
                    break;
                }
            }

            if (!matched)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsLegal(List<WriteRecord> list, long found, long readStart, long readEnd)
    {
        if (found < 0)
        {
            return false;
        }

        if (found == Payload.Unwritten)
        {
            return !list.Exists(w => !w.Uncertain && w.End < readStart);
        }

        int i = list.FindIndex(w => w.Id == found);
        return i >= 0 && list[i].Start < readEnd && !Overwritten(list, list[i], readStart);
    }

    private static string Legal(List<WriteRecord> list, long readStart, long readEnd)
    {
        var legal = new List<string>();
        if (!list.Exists(w => !w.Uncertain && w.End < readStart))
        {
            legal.Add("zeros (never written)");
        }

        foreach (WriteRecord w in list)
        {
            if (w.Start < readEnd && !Overwritten(list, w, readStart))
            {
                legal.Add("write " + w.Id);
            }
        }

        return legal.Count == 0 ? "nothing" : string.Join(" or ", legal);
    }

    // Some other write of the block started after w ended and ended before `before`.
    private static bool Overwritten(List<WriteRecord> list, WriteRecord w, long before) =>
        w.End != InFlight && list.Exists(o => !o.Uncertain && o.Start > w.End && o.End < before);

    // Drops writes overwritten before the oldest read in flight started (no read can legally see them any more).
    private void Prune(FileModel f, List<WriteRecord> list)
    {
        if (list.Count < 2)
        {
            return;
        }

        long horizon = Interlocked.Read(ref _clock) + 1;
        foreach (long s in f.ActiveReads)
        {
            horizon = Math.Min(horizon, s);
        }

        for (int i = list.Count - 1; i >= 0; i--)
        {
            if (Overwritten(list, list[i], horizon))
            {
                list.RemoveAt(i);
            }
        }
    }

    private sealed class FileModel
    {
        public readonly List<WriteRecord>[] Blocks;
        public readonly List<long> ActiveReads = new();

        public FileModel(int blocks)
        {
            Blocks = new List<WriteRecord>[blocks];
            for (int i = 0; i < blocks; i++)
            {
                Blocks[i] = new List<WriteRecord>();
            }
        }
    }

    private readonly record struct WriteRecord(long Id, long Start, long End, bool Uncertain = false);
}

/// <summary>A write in the model: its file, blocks and id (the payload's write id).</summary>
public readonly record struct WriteTicket(int File, int FirstBlock, int Blocks, long Id);

/// <summary>A read in the model: its file and start time.</summary>
public readonly record struct ReadTicket(int File, long Start);
