// The workqueue's System.Diagnostics.Metrics instruments, under the meter "Emu.Workqueue", so dotnet-counters
// (dotnet-counters monitor --counters Emu.Workqueue -p PID) and `emu diagnose` can watch live workqueues.
// Mirrors: pool_workqueue->stats (kernel/workqueue.c since v6.3, read by tools/workqueue/wq_monitor.py) for the
// per-workqueue counts, and the pool fields show_workqueue_state() prints for the worker counts.
// Model: queueing, starting and completing a work item and sending a mayday each add one to a plain field of
// the pwq, under the pool.Lock the path already holds, on lines it already touches: no atomic, no branch.
// Everything else is read when a listener collects: the backlog (items queued and not started: on the pool's
// worklist or on delayed_works, max_active's inactive list) is nr_in_flight minus the items running, taken
// under each pool.Lock; worker counts come from the pools. Counts are tagged with the workqueue's name and
// summed over every live WorkqueueSystem, so a process with several (tests) reports one series per name.
// Differs: v6.3 has no queued count (only started/completed); Emu adds one, and the backlog built on it.
// Flush barriers are started and completed like any item, as in the kernel, but never counted as queued.
using System.Diagnostics.Metrics;
using Emu.Kernel.Stats;

namespace Emu.Kernel;

/// <summary>pwq->stats: what happened to a pool_workqueue's items. Context: L (pool.Lock) for writes.</summary>
internal struct PwqStats
{
    public long Queued;    // Emu: items queued (__queue_work)
    public long Started;   // PWQ_STAT_STARTED: items process_one_work started
    public long Completed; // PWQ_STAT_COMPLETED: items whose function returned
    public long Mayday;    // PWQ_STAT_MAYDAY: maydays sent to the rescuer for this pwq
}

/// <summary>The "Emu.Workqueue" meter and the workqueue subsystems it reports on.</summary>
public static class WqMetrics
{
    /// <summary>The meter's name, for listeners.</summary>
    public const string MeterName = "Emu.Workqueue";

    private static readonly LiveSet<WorkqueueSystem> s_systems = new();
    private static readonly Meter s_meter = new(MeterName);

    static WqMetrics()
    {
        s_meter.CreateObservableCounter("emu.wq.work_queued", static () => PerWorkqueue(static (pwq, _) => pwq.Stats.Queued),
            unit: "{work}", description: "Work items queued (queue_work, and delayed work whose timer fired); an item cancelled before it ran never completes.");
        s_meter.CreateObservableCounter("emu.wq.work_completed", static () => PerWorkqueue(static (pwq, _) => pwq.Stats.Completed),
            unit: "{work}", description: "Work items whose function returned (flush barriers included).");
        s_meter.CreateObservableUpDownCounter("emu.wq.backlog", static () => PerWorkqueue(static (pwq, inFlight) => inFlight - (pwq.Stats.Started - pwq.Stats.Completed)),
            unit: "{work}", description: "Work items queued and not started: on a pool's worklist, or inactive beyond max_active.");
        s_meter.CreateObservableCounter("emu.wq.maydays", static () => PerWorkqueue(static (pwq, _) => pwq.Stats.Mayday),
            unit: "{mayday}", description: "Maydays sent to the workqueue's rescuer because its pool could not create a worker.");
        s_meter.CreateObservableUpDownCounter("emu.wq.workers", static () => PerPoolKind(static (pool, _) => pool.NrWorkers),
            unit: "{worker}", description: "kworkers attached to pools (busy and idle), per pool kind.");
        s_meter.CreateObservableUpDownCounter("emu.wq.workers.idle", static () => PerPoolKind(static (pool, _) => pool.NrIdle),
            unit: "{worker}", description: "kworkers on a pool's idle list, per pool kind.");
        s_meter.CreateObservableUpDownCounter("emu.wq.workers.running", static () => PerPoolKind(static (_, running) => running),
            unit: "{worker}", description: "nr_running: per-CPU workers running a work item and not asleep (unbound workers are never counted).");
    }

    internal static void Register(WorkqueueSystem system) => s_systems.Add(system);

    internal static void Unregister(WorkqueueSystem system) => s_systems.Remove(system);

    // Sums read(pwq, nr_in_flight) over the pwqs of each workqueue, every pwq read under its pool.Lock.
    private static IEnumerable<Measurement<long>> PerWorkqueue(Func<PoolWorkqueue, long, long> read)
    {
        var sums = new Dictionary<string, long>();
        foreach (WorkqueueSystem system in s_systems.Snapshot())
        {
            foreach (Workqueue wq in system.Workqueues())
            {
                long sum = 0;
                foreach (PoolWorkqueue pwq in wq.Pwqs)
                {
                    using (pwq.Pool.Lock.EnterScope())
                    {
                        long inFlight = 0;
                        for (int color = 0; color < WorkStruct.NrColors; color++)
                        {
                            inFlight += pwq.NrInFlight[color];
                        }

                        sum += read(pwq, inFlight);
                    }
                }

                sums[wq.Name] = sums.GetValueOrDefault(wq.Name) + sum;
            }
        }

        foreach ((string name, long value) in sums)
        {
            yield return new Measurement<long>(value, new KeyValuePair<string, object?>("wq", name));
        }
    }

    // Sums read(pool, nr_running) over the pools of each kind, every pool read under its pool.Lock.
    private static IEnumerable<Measurement<long>> PerPoolKind(Func<WorkerPool, int, long> read)
    {
        var sums = new Dictionary<string, long>();
        foreach (WorkqueueSystem system in s_systems.Snapshot())
        {
            foreach (WorkerPool pool in system.Pools())
            {
                string kind = pool.Cpu < 0 ? "unbound" : pool.Highpri ? "percpu-highpri" : "percpu";
                using (pool.Lock.EnterScope())
                {
                    sums[kind] = sums.GetValueOrDefault(kind) + read(pool, pool.NrRunning);
                }
            }
        }

        foreach ((string kind, long value) in sums)
        {
            yield return new Measurement<long>(value, new KeyValuePair<string, object?>("pool", kind));
        }
    }
}
