// fio-style job files for `emu compare --job FILE`: INI sections of key=value lines, a [global] section of
// defaults for the sections after it (as in fio), and one workload per other section. Keys take fio's names
// where fio has one, with fio's meaning mapped onto the stress mix:
//   rw         randrw|rw|readwrite: readers and writers (rwmixread of numjobs read); randread|read: only
//              O_DIRECT readers; randwrite|write: only buffered writers. Emu picks every offset at random,
//              so the sequential names mean the same as the random ones.
//   rwmixread, rwmixwrite   percent of numjobs that read / write (default 50).
//   bs         bytes per operation; size: bytes of all files together; filesize: bytes per file;
//   nrfiles, numjobs, runtime (seconds, or with ms/s/m/h).
//   direct     1: reads use O_DIRECT (emu's readers always do; direct=0 is refused); writers stay buffered.
// Emu's own keys: conflicts=0|1, sync=0|1, snapshots=0|1, dio_writers=N.
// Any error is one line "FILE:LINE: what is wrong" and no workload is returned.
using System.Globalization;
using Emu.Btrfs;
using Emu.Workloads.Stress;

namespace Emu.Workloads.Compare;

/// <summary>Reads fio-style job files into compare workloads.</summary>
public static class JobFile
{
    private const string Global = "global";

    private static readonly string[] s_keys =
    [
        "rw", "rwmixread", "rwmixwrite", "bs", "size", "filesize", "nrfiles", "numjobs", "runtime", "direct",
        "description", "conflicts", "sync", "snapshots", "dio_writers",
    ];

    private static readonly string[] s_rw = ["randrw", "rw", "readwrite", "randread", "read", "randwrite", "write"];

    /// <summary>Reads a job file.</summary>
    /// <param name="path">The file, named in errors as given.</param>
    /// <exception cref="WorkloadUsageException">The file cannot be read or holds a mistake.</exception>
    public static IReadOnlyList<CompareWorkload> Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WorkloadUsageException($"{path}: cannot read the job file: {e.Message}");
        }

        return Parse(text, path);
    }

    /// <summary>Parses job file text.</summary>
    /// <param name="text">The file's contents.</param>
    /// <param name="name">The file's name, for errors and as each workload's source.</param>
    /// <exception cref="WorkloadUsageException">The text holds a mistake.</exception>
    public static IReadOnlyList<CompareWorkload> Parse(string text, string name)
    {
        ArgumentNullException.ThrowIfNull(text);
        var globals = new List<Entry>();
        var sections = new List<(string Name, int Line, List<Entry> Entries)>();
        List<Entry>? current = null;
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int lineNo = i + 1;
            string line = lines[i].Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }

            if (line[0] == '[')
            {
                if (line[^1] != ']')
                {
                    throw Error(name, lineNo, $"section header '{line}' lacks its closing ']'");
                }

                string section = line[1..^1].Trim();
                if (section == Global)
                {
                    current = globals;
                    continue;
                }

                if (section.Length == 0 || !section.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                {
                    throw Error(name, lineNo, $"job name '{section}' is not a name; use letters, digits, '-', '_' and '.'");
                }

                if (sections.Any(s => s.Name == section))
                {
                    throw Error(name, lineNo, $"job [{section}] is defined twice");
                }

                // As in fio, a job takes the [global] keys given before it.
                current = new List<Entry>(globals);
                sections.Add((section, lineNo, current));
                continue;
            }

            int eq = line.IndexOf('=');
            string key = (eq < 0 ? line : line[..eq]).Trim();
            string value = eq < 0 ? "1" : line[(eq + 1)..].Trim();
            if (current is null)
            {
                throw Error(name, lineNo, $"key '{key}' outside any [section]");
            }

            if (!s_keys.Contains(key))
            {
                string where = ReferenceEquals(current, globals) ? "[global]" : $"[{sections[^1].Name}]";
                throw Error(name, lineNo, $"unknown key '{key}' in {where} (known: {string.Join(", ", s_keys)})");
            }

            var entry = new Entry(key, value, lineNo);
            Check(name, entry);
            current.Add(entry);
        }

        if (sections.Count == 0)
        {
            throw new WorkloadUsageException($"{name}: no job sections; add one such as [mixed] with rw=randrw");
        }

        return sections.Select(s => Build(name, s.Name, s.Line, s.Entries)).ToArray();
    }

    // Checks one value on its own, so that the error names its line.
    private static void Check(string file, Entry e)
    {
        switch (e.Key)
        {
            case "rw":
                if (!s_rw.Contains(e.Value))
                {
                    throw Error(file, e.Line, $"bad value '{e.Value}' for 'rw' (use {string.Join(", ", s_rw)})");
                }

                break;
            case "rwmixread" or "rwmixwrite":
                Int(file, e, 0, 100);
                break;
            case "bs":
                long bs = Size(file, e);
                if (bs % Payload.BlockSize != 0 || bs > StressOptions.MaxBlockSize)
                {
                    throw Error(file, e.Line, $"bs '{e.Value}' must be a multiple of 4k up to {StressOptions.MaxBlockSize >> 10}k");
                }

                break;
            case "size" or "filesize":
                long size = Size(file, e);
                if (size % Payload.BlockSize != 0 || size > (1L << 30))
                {
                    throw Error(file, e.Line, $"{e.Key} '{e.Value}' must be a multiple of 4k up to 1g");
                }

                break;
            case "nrfiles":
                Int(file, e, 1, 1024);
                break;
            case "numjobs":
                Int(file, e, 1, 256);
                break;
            case "dio_writers":
                Int(file, e, 0, 256);
                break;
            case "runtime":
                Duration(file, e);
                break;
            case "direct":
                if (Bool(file, e) == false)
                {
                    throw Error(file, e.Line, "direct=0 is not supported: emu's readers always use O_DIRECT (the deadlock needs them); drop the line or use direct=1");
                }

                break;
            case "conflicts" or "sync" or "snapshots":
                Bool(file, e);
                break;
        }
    }

    private static CompareWorkload Build(string file, string name, int line, List<Entry> entries)
    {
        // The last value of a key wins (a job's own keys come after the [global] ones).
        var keys = new Dictionary<string, Entry>();
        foreach (Entry e in entries)
        {
            keys[e.Key] = e;
        }

        string? Get(string key) => keys.TryGetValue(key, out Entry? e) ? e.Value : null;
        int files = keys.TryGetValue("nrfiles", out Entry? nr) ? Int(file, nr, 1, 1024) : 2;
        long fileSize = keys.TryGetValue("filesize", out Entry? fs) ? Size(file, fs)
            : keys.TryGetValue("size", out Entry? total) ? Size(file, total) / files / Payload.BlockSize * Payload.BlockSize
            : 64 * 1024;
        int tasks = keys.TryGetValue("numjobs", out Entry? nj) ? Int(file, nj, 1, 256) : 4;
        int readPercent = keys.TryGetValue("rwmixread", out Entry? mr) ? Int(file, mr, 0, 100)
            : keys.TryGetValue("rwmixwrite", out Entry? mw) ? 100 - Int(file, mw, 0, 100)
            : 50;
        int readers = Get("rw") switch
        {
            "randread" or "read" => tasks,
            "randwrite" or "write" => 0,
            _ => (int)Math.Round(tasks * readPercent / 100.0, MidpointRounding.AwayFromZero),
        };
        var workload = new CompareWorkload
        {
            Name = name,
            Source = file,
            Description = Get("description") ?? $"job [{name}] of {file}",
            Files = files,
            FileSize = fileSize,
            Tasks = tasks,
            Readers = readers,
            DirectWriters = keys.TryGetValue("dio_writers", out Entry? dw) ? Int(file, dw, 0, 256) : 0,
            Conflicts = !keys.TryGetValue("conflicts", out Entry? c) || Bool(file, c),
            BlockSize = keys.TryGetValue("bs", out Entry? bs) ? Size(file, bs) : null,
            Syncer = !keys.TryGetValue("sync", out Entry? sy) || Bool(file, sy),
            Snapshotter = !keys.TryGetValue("snapshots", out Entry? sn) || Bool(file, sn),
            Runtime = keys.TryGetValue("runtime", out Entry? rt) ? TimeSpan.FromMilliseconds(Duration(file, rt)) : null,
        };
        if (workload.ToStressOptions(BtrfsMode.Patched, TimeSpan.FromSeconds(1), 1).Validate() is { } problem)
        {
            throw Error(file, line, $"job [{name}]: {problem.Replace("--", "", StringComparison.Ordinal)}");
        }

        return workload;
    }

    private static int Int(string file, Entry e, int min, int max)
    {
        if (!int.TryParse(e.Value, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
        {
            throw Error(file, e.Line, $"bad value '{e.Value}' for '{e.Key}' (use a whole number from {min} to {max})");
        }

        return v;
    }

    private static bool Bool(string file, Entry e) => e.Value switch
    {
        "1" => true,
        "0" => false,
        _ => throw Error(file, e.Line, $"bad value '{e.Value}' for '{e.Key}' (use 0 or 1)"),
    };

    // fio's sizes: a whole number with an optional k, m or g suffix (base 1024), optionally followed by b or ib.
    private static long Size(string file, Entry e)
    {
        string s = e.Value.ToLowerInvariant();
        if (s.EndsWith("ib", StringComparison.Ordinal))
        {
            s = s[..^2];
        }
        else if (s.Length > 1 && s[^1] == 'b' && char.IsAsciiLetter(s[^2]))
        {
            s = s[..^1];
        }

        int shift = s.Length == 0 ? 0 : s[^1] switch { 'k' => 10, 'm' => 20, 'g' => 30, _ => 0 };
        if (shift > 0)
        {
            s = s[..^1];
        }

        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0 || n > (1L << (62 - shift)))
        {
            throw Error(file, e.Line, $"bad size '{e.Value}' for '{e.Key}' (use {(e.Key == "bs" ? "4k, 16k, 128k" : "64k, 1m, 16m")})");
        }

        return n << shift;
    }

    // fio's durations: plain numbers are seconds; units ms, s, m, h.
    private static long Duration(string file, Entry e)
    {
        string s = e.Value.ToLowerInvariant();
        long scale = 1000;
        if (s.EndsWith("ms", StringComparison.Ordinal))
        {
            scale = 1;
            s = s[..^2];
        }
        else if (s.Length > 0 && s[^1] is 's' or 'm' or 'h')
        {
            scale = s[^1] switch { 's' => 1000, 'm' => 60_000, _ => 3_600_000 };
            s = s[..^1];
        }

        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0 || n > int.MaxValue / scale)
        {
            throw Error(file, e.Line, $"bad duration '{e.Value}' for '{e.Key}' (use seconds such as 5, or 500ms, 2m)");
        }

        return n * scale;
    }

    private static WorkloadUsageException Error(string file, int line, string what) => new($"{file}:{line}: {what}");

    private sealed record Entry(string Key, string Value, int Line);
}
