// `emu diagnose PID --counters`: what `dotnet-counters monitor --counters Emu.Block,Emu.Workqueue,Emu.Btrfs,Emu.Sched`
// shows, without installing dotnet-counters. An EventPipe session on the target's System.Diagnostics.Metrics
// event source (the runtime's MetricsEventSource) asks it to aggregate the Emu meters every interval; each
// interval ends with CollectionStop, after its CounterRateValuePublished / UpDownCounterRateValuePublished /
// GaugeValuePublished events, and is printed then: a table redrawn in place on a terminal, plain blocks when
// output is redirected, or one JSON object per interval.
// Differs from dotnet-counters: counters show their running total ("value", .NET 8+) beside the rate, since the
// emulated kernel's totals (hung-task reports, deadlock cycles) matter more than their rates.
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;

namespace Emu.Cli.Diagnostics;

/// <summary>One time series of one interval.</summary>
/// <param name="Meter">The meter ("Emu.Block").</param>
/// <param name="Instrument">The instrument ("emu.block.ios").</param>
/// <param name="Tags">Its tags as MetricsEventSource prints them ("disk=emu0,op=read"), empty when none.</param>
/// <param name="Unit">The instrument's unit.</param>
/// <param name="Value">The total (counters, up-down counters) or last value (gauges); null when not reported.</param>
/// <param name="Rate">What a counter added during the interval; null for gauges.</param>
internal sealed record CounterValue(string Meter, string Instrument, string Tags, string Unit, double? Value, double? Rate);

/// <summary>Reads the Emu meters of a live process through EventPipe.</summary>
internal sealed class CounterMonitor
{
    /// <summary>The meters `emu diagnose --counters` asks for.</summary>
    public static readonly string[] Meters = ["Emu.Block", "Emu.Workqueue", "Emu.Btrfs", "Emu.Sched"];

    private const string MetricsProvider = "System.Diagnostics.Metrics";
    private const long TimeSeriesValuesKeyword = 0x2; // MetricsEventSource.Keywords.TimeSeriesValues
    private const long MessagesKeyword = 0x1;         // MetricsEventSource.Keywords.Messages: errors

    private readonly int _pid;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _duration;
    private readonly string _sessionId = Guid.NewGuid().ToString("N");
    private readonly SortedDictionary<string, CounterValue> _current = new(StringComparer.Ordinal);

    public CounterMonitor(int pid, TimeSpan interval, TimeSpan duration)
    {
        _pid = pid;
        _interval = interval;
        _duration = duration;
    }

    /// <summary>The last error MetricsEventSource reported for this session, if any.</summary>
    public string? Error { get; private set; }

    /// <summary>
    /// Runs the session for the duration, calling <paramref name="onInterval"/> with every interval's values
    /// (sorted by meter, instrument and tags) on the thread that called Run.
    /// </summary>
    /// <returns>How many intervals were reported.</returns>
    public int Run(Action<TimeSpan, IReadOnlyList<CounterValue>> onInterval)
    {
        var arguments = new Dictionary<string, string>
        {
            ["SessionId"] = _sessionId,
            ["Metrics"] = string.Join(',', Meters),
            ["RefreshInterval"] = _interval.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["MaxTimeSeries"] = "1000",
            ["MaxHistograms"] = "10",
        };
        var provider = new EventPipeProvider(MetricsProvider, EventLevel.Informational, TimeSeriesValuesKeyword | MessagesKeyword, arguments);
        var client = new DiagnosticsClient(_pid);
        using EventPipeSession session = client.StartEventPipeSession([provider], requestRundown: false, circularBufferMB: 16);
        using var source = new EventPipeEventSource(session.EventStream);
        var started = DateTime.UtcNow;
        int intervals = 0;
        source.Dynamic.All += e =>
        {
            if (e.ProviderName != MetricsProvider)
            {
                return;
            }

            // TraceEvent names the Start/Stop-opcode pair "Collection/Start" and "Collection/Stop".
            if (e.EventName is "Collection/Stop" or "CollectionStop" && Payload(e, "sessionId", 0) == _sessionId)
            {
                intervals++;
                onInterval(DateTime.UtcNow - started, [.. _current.Values]);
                _current.Clear();
            }
            else
            {
                OnEvent(e);
            }
        };

        using var stop = new Timer(_ => StopQuietly(session), null, _duration, Timeout.InfiniteTimeSpan);
        source.Process();
        return intervals;
    }

    /// <summary>The values as a text table (one line per time series, grouped by meter).</summary>
    public static void WriteTable(TextWriter o, TimeSpan elapsed, IReadOnlyList<CounterValue> values)
    {
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{elapsed.TotalSeconds,6:F1}s] {values.Count} time series"));
        string? meter = null;
        foreach (CounterValue v in values)
        {
            if (v.Meter != meter)
            {
                meter = v.Meter;
                o.WriteLine(meter);
            }

            string name = v.Tags.Length == 0 ? v.Instrument : $"{v.Instrument}[{v.Tags}]";
            string value = v.Value is { } x ? x.ToString("#,0.##", CultureInfo.InvariantCulture) : "-";
            string rate = v.Rate is { } r ? $"  (+{r.ToString("#,0.##", CultureInfo.InvariantCulture)} this interval)" : "";
            o.WriteLine($"  {name,-60} {value,16} {v.Unit}{rate}");
        }
    }

    /// <summary>The values as one line of JSON: {"elapsedSeconds", "values": [{meter, name, tags{}, unit, value, rate}]}.</summary>
    public static string ToJson(TimeSpan elapsed, IReadOnlyList<CounterValue> values)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteNumber("elapsedSeconds", Math.Round(elapsed.TotalSeconds, 3));
            w.WriteStartArray("values");
            foreach (CounterValue v in values)
            {
                w.WriteStartObject();
                w.WriteString("meter", v.Meter);
                w.WriteString("name", v.Instrument);
                w.WriteStartObject("tags");
                foreach (string tag in v.Tags.Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    int eq = tag.IndexOf('=');
                    w.WriteString(eq < 0 ? tag : tag[..eq], eq < 0 ? "" : tag[(eq + 1)..]);
                }

                w.WriteEndObject();
                w.WriteString("unit", v.Unit);
                WriteNumberOrNull(w, "value", v.Value);
                WriteNumberOrNull(w, "rate", v.Rate);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteNumberOrNull(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    // MetricsEventSource's value events share (sessionId, meterName, meterVersion, instrumentName, unit, tags)
    // and then carry the values as invariant-culture strings: rate and value for counters, lastValue for gauges.
    private void OnEvent(TraceEvent e)
    {
        if (Payload(e, "sessionId", 0) != _sessionId)
        {
            return;
        }

        switch (e.EventName)
        {
            case "CounterRateValuePublished":
            case "UpDownCounterRateValuePublished":
                Add(e, Number(Payload(e, "value", 7)), Number(Payload(e, "rate", 6)), e.EventName == "CounterRateValuePublished");
                break;
            case "GaugeValuePublished":
                Add(e, Number(Payload(e, "lastValue", 6)), null, isCounter: false);
                break;
            case "Error":
            case "ObservableInstrumentCallbackError":
                Error = Payload(e, "errorMessage", 1);
                break;
            case "TimeSeriesLimitReached":
                Error = "the target stopped tracking new time series (MaxTimeSeries reached)";
                break;
        }
    }

    private void Add(TraceEvent e, double? value, double? rate, bool isCounter)
    {
        string meter = Payload(e, "meterName", 1) ?? "";
        string instrument = Payload(e, "instrumentName", 3) ?? "";
        string unit = Payload(e, "unit", 4) ?? "";
        string tags = Payload(e, "tags", 5) ?? "";
        _current[$"{meter}\0{instrument}\0{tags}"] = new CounterValue(meter, instrument, tags, unit, value, isCounter ? rate : null);
    }

    private static string? Payload(TraceEvent e, string name, int index)
    {
        int i = e.PayloadIndex(name);
        if (i < 0)
        {
            i = index < e.PayloadNames.Length ? index : -1;
        }

        return i < 0 ? null : e.PayloadValue(i)?.ToString();
    }

    private static double? Number(string? text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : null;

    // The target may exit first: stopping a session whose process is gone is not an error here.
    private static void StopQuietly(EventPipeSession session)
    {
        try
        {
            session.Stop();
        }
        catch (Exception e) when (e is ServerNotAvailableException or IOException or TimeoutException or ObjectDisposedException)
        {
        }
    }
}
