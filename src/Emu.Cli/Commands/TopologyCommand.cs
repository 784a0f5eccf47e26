using System.CommandLine;
using System.Text.Json;
using Emu.Interop;

namespace Emu.Cli.Commands;

/// <summary>`emu topology`: what the shim reads of the CPUs, and where Emu's workers would run.</summary>
internal static class TopologyCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var command = new Command("topology", "CPU, NUMA and L3 (CCX) topology, the EPYC generation, and the worker pinning plan. EMU_SYSFS_ROOT=DIR reads DIR/sys and DIR/proc instead.")
        {
            json,
        };
        command.SetAction(parse => Execute(parse.GetValue(json)));
        return command;
    }

    private static int Execute(bool json)
    {
        var topology = ReadTopology();
        var plan = PinningPlan.For(topology);
        if (json) WriteJson(topology, plan, Console.Out);
        else WriteText(topology, plan, Console.Out);
        return CommandRunner.ExitOk;
    }

    internal static Topology ReadTopology()
    {
        try
        {
            return Topology.Read();
        }
        catch (ShimException e)
        {
            var sysfsRoot = Environment.GetEnvironmentVariable("EMU_SYSFS_ROOT");
            if (!string.IsNullOrEmpty(sysfsRoot))
                throw new UsageException($"EMU_SYSFS_ROOT={sysfsRoot} holds no sys/devices/system/cpu ({e.Message}); point it at a folder containing sys/ and proc/, or unset it");
            throw new UsageException($"cannot read the CPU topology: {e.Message}");
        }
    }

    private static void WriteText(Topology t, PinningPlan plan, TextWriter o)
    {
        o.WriteLine($"CPU:            {t.ModelName} ({t.Vendor}, family 0x{t.Family:x}, model 0x{t.Model:x}{(t.Stepping >= 0 ? $", stepping {t.Stepping}" : "")})");
        o.WriteLine($"AMD EPYC 7002:  {(t.IsEpyc7002 ? "yes (Rome, Zen 2)" : "no")}");
        o.WriteLine($"Sockets:        {t.Sockets}");
        o.WriteLine($"Physical cores: {t.PhysicalCores}");
        o.WriteLine($"Logical CPUs:   {t.LogicalCpus} ({t.ThreadsPerCore} thread{(t.ThreadsPerCore == 1 ? "" : "s")} per core)");
        o.WriteLine($"NUMA nodes:     {t.NumaNodes.Length}");
        foreach (var n in t.NumaNodes)
            o.WriteLine($"  node {n.Id}: cpus {CpuList.Format(n.Cpus)}  distances [{string.Join(' ', n.Distances)}]");
        o.WriteLine($"L3 domains:     {t.L3Domains.Length}{(t.L3Domains.Length == 0 ? " (this machine's sysfs exposes no level-3 cache)" : "")}");
        foreach (var l in t.L3Domains)
            o.WriteLine($"  l3 {l.Id}: cpus {CpuList.Format(l.Cpus)}{(l.SizeBytes > 0 ? $"  {l.SizeBytes >> 20} MiB" : "")}");
        o.WriteLine("Pinning plan:");
        foreach (var p in plan.NodeWorkers)
            o.WriteLine($"  unbound workqueue pool, node {p.Domain}: kworker/u* pinned to cpus {CpuList.Format(p.Cpus)}");
        foreach (var p in plan.L3Workers)
            o.WriteLine($"  L3 domain {p.Domain} workers (affinity scope 'cache'): cpus {CpuList.Format(p.Cpus)}");
        foreach (var p in plan.HardwareQueues)
            o.WriteLine($"  blk-mq hardware queue {p.Domain}: completion thread on node {p.Node}, cpus {CpuList.Format(p.Cpus)}");
        o.WriteLine($"  per-CPU bound pools: kworker/N:M and kworker/N:MH on each of cpus {CpuList.Format(plan.BoundCpus)}");
    }

    private static void WriteJson(Topology t, PinningPlan plan, TextWriter o)
    {
        o.WriteLine(JsonText.Of(w =>
        {
            w.WriteStartObject();
            w.WriteString("modelName", t.ModelName);
            w.WriteString("vendor", t.Vendor);
            w.WriteNumber("family", t.Family);
            w.WriteNumber("model", t.Model);
            w.WriteNumber("stepping", t.Stepping);
            w.WriteBoolean("isEpyc7002", t.IsEpyc7002);
            w.WriteNumber("sockets", t.Sockets);
            w.WriteNumber("physicalCores", t.PhysicalCores);
            w.WriteNumber("logicalCpus", t.LogicalCpus);
            w.WriteNumber("smt", t.ThreadsPerCore);
            w.WriteStartArray("numaNodes");
            foreach (var n in t.NumaNodes)
            {
                w.WriteStartObject();
                w.WriteNumber("id", n.Id);
                WriteInts(w, "cpus", n.Cpus);
                WriteInts(w, "distances", n.Distances);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("l3Domains");
            foreach (var l in t.L3Domains)
            {
                w.WriteStartObject();
                w.WriteNumber("id", l.Id);
                WriteInts(w, "cpus", l.Cpus);
                w.WriteNumber("sizeBytes", l.SizeBytes);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("pinningPlan");
            WriteDomains(w, "numaNodeWorkers", plan.NodeWorkers);
            WriteDomains(w, "l3DomainWorkers", plan.L3Workers);
            WriteDomains(w, "hardwareQueues", plan.HardwareQueues);
            WriteInts(w, "boundCpus", plan.BoundCpus);
            w.WriteEndObject();
            w.WriteEndObject();
        }));
    }

    private static void WriteDomains(Utf8JsonWriter w, string name, IReadOnlyList<PinningPlan.Placement> placements)
    {
        w.WriteStartArray(name);
        foreach (var p in placements)
        {
            w.WriteStartObject();
            w.WriteNumber("id", p.Domain);
            w.WriteNumber("node", p.Node);
            WriteInts(w, "cpus", p.Cpus);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteInts(Utf8JsonWriter w, string name, IReadOnlyList<int> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }
}
