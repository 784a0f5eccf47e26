// Shared by the test projects (linked into each csproj).
// A MeterListener on one meter, as dotnet-counters would attach: collects the observable instruments on demand
// and keeps what the other instruments record, so tests read values by instrument and tag.
using System.Diagnostics.Metrics;

namespace Emu.Testing;

internal sealed class MeterProbe : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<Instrument> _instruments = new();                                  // lock: _measurements
    private readonly List<(string Instrument, long Value, Dictionary<string, object?> Tags)> _measurements = new();

    public MeterProbe(string meterName)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == meterName)
            {
                lock (_measurements)
                {
                    _instruments.Add(instrument);
                }

                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var copy = new Dictionary<string, object?>();
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                copy[tag.Key] = tag.Value;
            }

            lock (_measurements)
            {
                _measurements.Add((instrument.Name, value, copy));
            }
        });
        _listener.Start();
    }

    /// <summary>Every instrument of the meter.</summary>
    public Instrument[] Instruments
    {
        get
        {
            lock (_measurements)
            {
                return _instruments.ToArray();
            }
        }
    }

    /// <summary>Collects the observable instruments once; the sum of what <paramref name="instrument"/> reported with the tag (any, for an empty key).</summary>
    public long Observe(string instrument, string tagKey, string tagValue)
    {
        int from;
        lock (_measurements)
        {
            from = _measurements.Count;
        }

        _listener.RecordObservableInstruments();
        return Sum(instrument, tagKey, tagValue, from);
    }

    /// <summary>The sum of what <paramref name="instrument"/> recorded with the tag since the probe started.</summary>
    public long Recorded(string instrument, string tagKey, string tagValue) => Sum(instrument, tagKey, tagValue, 0);

    public void Dispose() => _listener.Dispose();

    private long Sum(string instrument, string tagKey, string tagValue, int from)
    {
        lock (_measurements)
        {
            long sum = 0;
            for (int i = from; i < _measurements.Count; i++)
            {
                var m = _measurements[i];
                if (m.Instrument == instrument && (tagKey.Length == 0 || (m.Tags.TryGetValue(tagKey, out object? v) && Equals(v, tagValue))))
                {
                    sum += m.Value;
                }
            }

            return sum;
        }
    }
}
