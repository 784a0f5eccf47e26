// `--trace FILE`: a Chrome trace-event timeline (Perfetto, chrome://tracing) of a run's emulated kernel, recorded
// by the kernel's tracepoints (Emu.Kernel TraceSession). A command running in this process records and writes it
// with Start/TraceRecording.Write; a command running its runs in child processes (repro --mode both / --repeat,
// compare) gives each child ChildArgs(...) and merges the parts with Merge, one trace "process" group per run.
using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Emu.Kernel;

namespace Emu.Cli;

/// <summary>The `--trace FILE` option: validation, in-process recording, and merging the traces of child runs.</summary>
internal static class TraceFiles
{
    private const int PidsPerRun = 10; // a part uses three pseudo-processes; a run's pids are run * 10 + k

    /// <summary>Adds `--trace FILE` to <paramref name="command"/>.</summary>
    public static Option<string?> AddOption(Command command)
    {
        var option = new Option<string?>("--trace")
        {
            Description = "Write a timeline of the run to FILE as Chrome trace-event JSON (open it in ui.perfetto.dev or chrome://tracing): " +
                          "a track per emulated task (running, and each sleep named by what it waits on), per workqueue (work items) and " +
                          "per blk-mq hardware queue (requests), with instants for deadlocks and hung-task reports.",
            HelpName = "FILE",
        };
        command.Options.Add(option);
        return option;
    }

    /// <summary>The full path of a `--trace` FILE, or null without one; a usage error when it cannot be written there.</summary>
    public static string? Validate(string? path)
    {
        if (path is null)
        {
            return null;
        }

        if (path.Length == 0)
        {
            throw new UsageException("--trace needs a file name, e.g. --trace run.json");
        }

        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new UsageException($"--trace {path} is a directory; name a file in it, e.g. --trace {Path.Combine(path, "trace.json")}");
        }

        string? dir = Path.GetDirectoryName(full);
        if (dir is not null && !Directory.Exists(dir))
        {
            throw new UsageException($"--trace {path}: the directory {dir} does not exist; create it or write the trace elsewhere");
        }

        return full;
    }

    /// <summary>Starts recording for a run in this process, or returns null when <paramref name="file"/> is null.</summary>
    /// <param name="file">The validated FILE.</param>
    /// <param name="label">Names the run's trace processes, e.g. "emu repro unpatched".</param>
    /// <param name="otherData">String entries for the trace's otherData (mode, seed...).</param>
    public static TraceRecording? Start(string? file, string label, params (string Key, string Value)[] otherData) =>
        file is null ? null : new TraceRecording(file, label, otherData);

    /// <summary>The FILE a child run writes its part to (run counts from 1); Merge reads and deletes it.</summary>
    public static string ChildPath(string file, int run) => $"{file}.run{run}.part";

    /// <summary>The arguments that make a child run write its part of <paramref name="file"/>.</summary>
    public static string[] ChildArgs(string file, int run) => ["--trace", ChildPath(file, run)];

    /// <summary>
    /// Merges the parts the child runs wrote into <paramref name="file"/>: each run becomes its own group of trace
    /// processes named after its label ("unpatched run 1", "unpatched run 1: workqueues", ...), and the parts are
    /// deleted. A run whose part is missing or incomplete (the child failed before it was written) is listed in
    /// otherData as missing.
    /// </summary>
    /// <param name="file">The FILE given to `--trace`.</param>
    /// <param name="runs">Each run's label, and its number as given to <see cref="ChildPath"/>, in run order.</param>
    public static void Merge(string file, IReadOnlyList<(string Label, int Run)> runs)
    {
        var parts = new List<(string Label, string Path, JsonDocument? Doc)>();
        try
        {
            foreach ((string label, int run) in runs)
            {
                string part = ChildPath(file, run);
                parts.Add((label, part, ReadPart(part)));
            }

            DateTime? firstStart = parts.Select(p => StartedUtc(p.Doc)).FirstOrDefault(t => t is not null);
            using (FileStream output = File.Create(file))
            using (var w = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteStartArray("traceEvents");
                for (int i = 0; i < parts.Count; i++)
                {
                    if (parts[i].Doc is { } doc)
                    {
                        // Each part counts from its own start; shifted by when it started, the runs line up one
                        // after the other as they ran.
                        double offsetUs = StartedUtc(doc) is { } start && firstStart is { } first ? (start - first).TotalMicroseconds : 0;
                        WriteRunEvents(w, doc.RootElement, parts[i].Label, (i + 1) * PidsPerRun, offsetUs);
                    }
                }

                w.WriteEndArray();
                w.WriteString("displayTimeUnit", "ms");
                w.WriteStartObject("otherData");
                long dropped = 0;
                w.WriteStartArray("runs");
                foreach ((string label, _, JsonDocument? doc) in parts)
                {
                    w.WriteStartObject();
                    w.WriteString("label", label);
                    if (doc is null)
                    {
                        w.WriteBoolean("missing", true);
                    }
                    else if (doc.RootElement.TryGetProperty("otherData", out JsonElement other))
                    {
                        foreach (JsonProperty p in other.EnumerateObject())
                        {
                            p.WriteTo(w);
                        }

                        if (other.TryGetProperty("droppedEvents", out JsonElement d) && d.TryGetInt64(out long n))
                        {
                            dropped += n;
                        }
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteNumber("droppedEvents", dropped);
                w.WriteEndObject();
                w.WriteEndObject();
            }
        }
        finally
        {
            foreach ((_, string path, JsonDocument? doc) in parts)
            {
                doc?.Dispose();
                File.Delete(path);
            }
        }
    }

    // A child's part, or null when it wrote none or left it incomplete (it was killed while writing).
    private static JsonDocument? ReadPart(string part)
    {
        if (!File.Exists(part))
        {
            return null;
        }

        try
        {
            using FileStream s = File.OpenRead(part);
            return JsonDocument.Parse(s);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static DateTime? StartedUtc(JsonDocument? doc) =>
        doc is not null && doc.RootElement.TryGetProperty("otherData", out JsonElement other) &&
        other.TryGetProperty("traceStartUtc", out JsonElement start) && start.TryGetDateTime(out DateTime t)
            ? t.ToUniversalTime()
            : null;

    // A part's events with its pids moved to base + k, its times shifted by offsetUs and its process names
    // relabelled for the run.
    private static void WriteRunEvents(Utf8JsonWriter w, JsonElement root, string label, int pidBase, double offsetUs)
    {
        string? partLabel = root.TryGetProperty("otherData", out JsonElement other) && other.TryGetProperty("processLabel", out JsonElement l)
            ? l.GetString()
            : null;
        var pids = new Dictionary<int, int>();
        foreach (JsonElement e in root.GetProperty("traceEvents").EnumerateArray())
        {
            int pid = e.GetProperty("pid").GetInt32();
            if (!pids.TryGetValue(pid, out int mapped))
            {
                mapped = pidBase + pids.Count;
                pids.Add(pid, mapped);
            }

            string? name = e.GetProperty("name").GetString();
            w.WriteStartObject();
            foreach (JsonProperty p in e.EnumerateObject())
            {
                if (p.NameEquals("pid"))
                {
                    w.WriteNumber("pid", mapped);
                }
                else if (p.NameEquals("ts"))
                {
                    w.WriteNumber("ts", Math.Round(p.Value.GetDouble() + offsetUs, 3));
                }
                else if (p.NameEquals("args") && name == "process_name")
                {
                    string old = p.Value.GetProperty("name").GetString() ?? "";
                    w.WriteStartObject("args");
                    w.WriteString("name", partLabel is not null && old.StartsWith(partLabel, StringComparison.Ordinal) ? label + old[partLabel.Length..] : $"{label}: {old}");
                    w.WriteEndObject();
                }
                else if (p.NameEquals("args") && name == "process_sort_index")
                {
                    w.WriteStartObject("args");
                    w.WriteNumber("sort_index", pidBase + p.Value.GetProperty("sort_index").GetInt32());
                    w.WriteEndObject();
                }
                else
                {
                    p.WriteTo(w);
                }
            }

            w.WriteEndObject();
        }
    }
}

/// <summary>A trace being recorded for a run in this process (see <see cref="TraceFiles.Start"/>).</summary>
internal sealed class TraceRecording : IDisposable
{
    private readonly string _file;
    private readonly string _label;
    private readonly (string Key, string Value)[] _otherData;
    private readonly TraceSession _session;

    internal TraceRecording(string file, string label, (string Key, string Value)[] otherData)
    {
        _file = file;
        _label = label;
        _otherData = otherData;
        _session = TraceSession.Start();
    }

    /// <summary>
    /// Stops recording and writes FILE. Call it once the run is over, deadlocked or not: tasks still blocked are
    /// written as sleeps that end now, marked "still blocked".
    /// </summary>
    public TraceWriteSummary Write()
    {
        _session.Stop();
        using FileStream stream = File.Create(_file);
        return _session.WriteChromeJson(stream, new TraceWriteOptions
        {
            ProcessLabel = _label,
            OtherData =
            [
                new("processLabel", _label),
                new("hostPid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture)),
                .. _otherData.Select(e => KeyValuePair.Create(e.Key, e.Value)),
            ],
        });
    }

    /// <inheritdoc />
    public void Dispose() => _session.Stop();
}
