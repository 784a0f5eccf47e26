// Mirrors: kernel/printk/printk.c (v4.4): the log buffer (log_buf, log_buf_len, struct printk_log with
// ts_nsec), log_store(), print_time() ("[%5lu.%06lu] ") and the console that echoes every record.
//
// Model: a bounded ring of records, each one line of text stamped with the time since the emulated boot (the
// construction of the log, standing in for local_clock() since power-on) and a sequence number (log_next_seq).
// When the text held exceeds the capacity, the oldest records are dropped, as log_store() overwrites the oldest
// records of log_buf; the number dropped is kept (dmesg would show the gap in sequence numbers). Every record is
// also written, timestamp first, to an optional mirror (the console: stderr for the CLI, or a file), under the
// same lock, so the mirror's order is the log's order. A printk of text containing '\n' stores one record per
// line, each with its own timestamp, as the kernel does for multi-line printks.
// Differs: no log levels, facilities or continuation lines; the capacity counts characters of text plus a fixed
// header per record (the size of struct printk_log), not bytes of an encoded buffer.
using System.Diagnostics;
using System.Text;

namespace Emu.Kernel;

/// <summary>One record of the kernel log (struct printk_log).</summary>
/// <param name="Sequence">Position in the log since boot (log_next_seq at store time), counting dropped records.</param>
/// <param name="TimestampUs">Microseconds since the log's boot (ts_nsec / 1000).</param>
/// <param name="Text">The line, without timestamp or newline.</param>
public readonly record struct KernelLogRecord(long Sequence, long TimestampUs, string Text)
{
    /// <summary>The line as dmesg prints it: "[   12.345678] text".</summary>
    public string Format() => KernelLog.FormatTimestamp(TimestampUs) + Text;
}

/// <summary>
/// The kernel log buffer: a bounded, thread-safe ring of timestamped lines, optionally mirrored to a writer.
/// </summary>
public sealed class KernelLog : IKernelLog
{
    /// <summary>Default capacity in characters: 4 MiB, the size of a large CONFIG_LOG_BUF_SHIFT buffer.</summary>
    public const int DefaultCapacityChars = 4 << 20;

    /// <summary>What each record costs beyond its text, in characters (sizeof(struct printk_log)).</summary>
    public const int RecordOverheadChars = 16;

    private readonly Lock _lock = new();                          // logbuf_lock
    private readonly Queue<KernelLogRecord> _records = new();     // L: _lock
    private readonly long _bootTimestamp;                         // I: Stopwatch timestamp of the emulated boot
    private readonly int _capacityChars;                          // I
    private long _usedChars;                                      // L: _lock
    private long _nextSequence;                                   // L: _lock
    private long _dropped;                                        // L: _lock
    private TextWriter? _mirror;                                  // L: _lock

    /// <param name="mirror">Receives each line, timestamped, as it is logged (e.g. Console.Error); null for none.</param>
    /// <param name="capacityChars">Most text kept (plus <see cref="RecordOverheadChars"/> per line) before the oldest lines are dropped.</param>
    public KernelLog(TextWriter? mirror = null, int capacityChars = DefaultCapacityChars)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityChars, RecordOverheadChars);
        _mirror = mirror;
        _capacityChars = capacityChars;
        _bootTimestamp = Stopwatch.GetTimestamp();
    }

    /// <summary>The capacity in characters given at construction.</summary>
    public int CapacityChars => _capacityChars;

    /// <summary>Time since the log's emulated boot: what the next line's timestamp would be.</summary>
    public TimeSpan Uptime => Stopwatch.GetElapsedTime(_bootTimestamp);

    /// <summary>The writer every line is echoed to (the console), or null; may be changed at any time.</summary>
    public TextWriter? Mirror
    {
        get
        {
            lock (_lock)
            {
                return _mirror;
            }
        }

        set
        {
            lock (_lock)
            {
                _mirror = value;
            }
        }
    }

    /// <summary>Number of lines currently held.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _records.Count;
            }
        }
    }

    /// <summary>Sequence number the next line will get (lines logged since boot, dropped ones included).</summary>
    public long NextSequence
    {
        get
        {
            lock (_lock)
            {
                return _nextSequence;
            }
        }
    }

    /// <summary>Lines dropped to keep the log within its capacity.</summary>
    public long DroppedLines
    {
        get
        {
            lock (_lock)
            {
                return _dropped;
            }
        }
    }

    /// <summary>The text of every line held, oldest first, without timestamps.</summary>
    public string[] Lines
    {
        get
        {
            lock (_lock)
            {
                var lines = new string[_records.Count];
                int i = 0;
                foreach (KernelLogRecord r in _records)
                {
                    lines[i++] = r.Text;
                }

                return lines;
            }
        }
    }

    /// <summary>Every line held as dmesg prints it ("[   12.345678] text"), oldest first.</summary>
    public string[] FormattedLines
    {
        get
        {
            KernelLogRecord[] records = Records();
            var lines = new string[records.Length];
            for (int i = 0; i < records.Length; i++)
            {
                lines[i] = records[i].Format();
            }

            return lines;
        }
    }

    /// <summary>
    /// print_time(): the timestamp prefix for <paramref name="timestampUs"/> microseconds since boot,
    /// "[%5lu.%06lu] ", e.g. "[   12.345678] ".
    /// </summary>
    public static string FormatTimestamp(long timestampUs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(timestampUs);
        long seconds = timestampUs / 1_000_000;
        long micros = timestampUs % 1_000_000;
        return $"[{seconds,5}.{micros:D6}] ";
    }

    /// <inheritdoc />
    public void Printk(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        lock (_lock)
        {
            if (!line.Contains('\n'))
            {
                LogStoreLocked(line, echo: null);
                return;
            }

            StringBuilder? echo = _mirror is null ? null : new StringBuilder();
            StoreLinesLocked(line, echo);
            EchoLocked(echo);
        }
    }

    /// <inheritdoc />
    public void PrintkLines(IReadOnlyList<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        lock (_lock)
        {
            StringBuilder? echo = _mirror is null ? null : new StringBuilder();
            for (int i = 0; i < lines.Count; i++)
            {
                StoreLinesLocked(lines[i], echo);
            }

            EchoLocked(echo);
        }
    }

    /// <summary>A copy of every record held, oldest first.</summary>
    public KernelLogRecord[] Records()
    {
        lock (_lock)
        {
            return _records.ToArray();
        }
    }

    /// <summary>The records held whose sequence is at least <paramref name="sequence"/> (lines logged since a <see cref="NextSequence"/> read).</summary>
    public KernelLogRecord[] RecordsSince(long sequence)
    {
        lock (_lock)
        {
            long first = _nextSequence - _records.Count;
            int skip = (int)Math.Clamp(sequence - first, 0, _records.Count);
            var result = new KernelLogRecord[_records.Count - skip];
            int i = 0;
            foreach (KernelLogRecord r in _records)
            {
                if (skip > 0)
                {
                    skip--;
                    continue;
                }

                result[i++] = r;
            }

            return result;
        }
    }

    /// <summary>Writes every line held, timestamped, to <paramref name="writer"/> (dmesg).</summary>
    public void DumpTo(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        foreach (KernelLogRecord r in Records())
        {
            writer.WriteLine(r.Format());
        }
    }

    /// <summary>Writes every line held, timestamped, to the file at <paramref name="path"/>, replacing it.</summary>
    public void DumpToFile(string path)
    {
        using var writer = new StreamWriter(path, append: false);
        DumpTo(writer);
    }

    /// <summary>dmesg -C: forgets every line held. Sequence numbers keep counting.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _records.Clear();
            _usedChars = 0;
        }
    }

    /// <summary>All lines held, without timestamps, joined with '\n'.</summary>
    public override string ToString() => string.Join('\n', Lines);

    // A report of many lines reaches the console in one write: one system call, and one redraw of a live
    // progress display rather than one per line.
    private void EchoLocked(StringBuilder? echo)
    {
        if (echo is { Length: > 0 })
        {
            _mirror?.Write(echo.ToString());
        }
    }

    // Stores each line of text; their console echo goes to echo if given, else straight to the mirror.
    private void StoreLinesLocked(string text, StringBuilder? echo)
    {
        int start = 0;
        while (true)
        {
            int nl = text.IndexOf('\n', start);
            if (nl < 0)
            {
                LogStoreLocked(start == 0 ? text : text[start..], echo);
                return;
            }

            LogStoreLocked(text[start..nl], echo);
            start = nl + 1;
        }
    }

    // log_store(): truncate a line that could never fit (truncate_msg), drop the oldest records to make room,
    // append, echo to the console (or to echo, for the caller to write with the lines around it).
    private void LogStoreLocked(string text, StringBuilder? echo)
    {
        if (text.Length + RecordOverheadChars > _capacityChars)
        {
            text = text[..(_capacityChars - RecordOverheadChars)];
        }

        long timestampUs = Stopwatch.GetElapsedTime(_bootTimestamp).Ticks / TimeSpan.TicksPerMicrosecond;
        var record = new KernelLogRecord(_nextSequence++, timestampUs, text);
        long size = text.Length + RecordOverheadChars;
        while (_usedChars + size > _capacityChars)
        {
            KernelLogRecord oldest = _records.Dequeue();
            _usedChars -= oldest.Text.Length + RecordOverheadChars;
            _dropped++;
        }

        _records.Enqueue(record);
        _usedChars += size;
        if (echo is not null)
        {
            echo.Append(record.Format()).Append('\n');
        }
        else
        {
            _mirror?.WriteLine(record.Format());
        }
    }
}
