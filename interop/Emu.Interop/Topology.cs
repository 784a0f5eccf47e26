// The machine's CPU topology as the shim reads it from sysfs and /proc/cpuinfo (topology.c), copied into an
// immutable managed model once, so pinning plans and reports never go back to native memory.
using System.Collections.Immutable;
using System.Text;

namespace Emu.Interop;

/// <summary>One online logical CPU.</summary>
/// <param name="Cpu">Logical CPU number as Linux numbers it.</param>
/// <param name="PackageId">physical_package_id: the socket.</param>
/// <param name="CoreId">core_id, unique within a package only.</param>
/// <param name="CoreIndex">Dense index of the physical core, 0 to PhysicalCores - 1.</param>
/// <param name="Node">NUMA node id; 0 when sysfs has no nodes.</param>
/// <param name="L3Index">Index into <see cref="Topology.L3Domains"/>; -1 when L3 is not exposed.</param>
/// <param name="SmtIndex">Position among its core's hardware threads: 0 is the first.</param>
public sealed record LogicalCpu(int Cpu, int PackageId, int CoreId, int CoreIndex, int Node, int L3Index, int SmtIndex);

/// <param name="Id">Node id (sysfs nodeN).</param>
/// <param name="Cpus">The node's CPUs, ascending.</param>
/// <param name="Distances">nodeN/distance: SLIT distance to each node, in node order.</param>
public sealed record NumaNode(int Id, ImmutableArray<int> Cpus, ImmutableArray<int> Distances);

/// <summary>A set of CPUs sharing one L3 cache: a CCX on AMD Zen 2.</summary>
/// <param name="Id">cache/index3/id when present, else the domain's index.</param>
/// <param name="Cpus">The domain's CPUs, ascending.</param>
/// <param name="SizeBytes">L3 size; 0 when sysfs does not say.</param>
public sealed record L3Domain(int Id, ImmutableArray<int> Cpus, long SizeBytes);

/// <summary>
/// CPUs, sockets, NUMA nodes and L3 domains of this machine, or of the sysfs tree EMU_SYSFS_ROOT names
/// (read by the shim when <see cref="Read"/> runs).
/// </summary>
public sealed class Topology
{
    /// <summary>Environment variable that points the shim at a fixture tree (DIR/sys/devices/system, DIR/proc/cpuinfo).</summary>
    public const string SysfsRootVariable = "EMU_SYSFS_ROOT";

    private Topology(in emu_topology_summary summary, string vendor, string modelName, ImmutableArray<LogicalCpu> cpus,
        ImmutableArray<NumaNode> nodes, ImmutableArray<L3Domain> l3Domains)
    {
        Vendor = vendor;
        ModelName = modelName;
        Family = summary.family;
        Model = summary.model;
        Stepping = summary.stepping;
        IsEpyc7002 = IsEpyc7002Cpu(Vendor, Family, Model, ModelName);
        Sockets = summary.sockets;
        PhysicalCores = summary.physical_cores;
        LogicalCpus = summary.logical_cpus;
        ThreadsPerCore = summary.threads_per_core;
        Cpus = cpus;
        NumaNodes = nodes;
        L3Domains = l3Domains;
    }

    /// <summary>cpuinfo "model name", e.g. "AMD EPYC 7702P 64-Core Processor".</summary>
    public string ModelName { get; }

    /// <summary>cpuinfo "vendor_id", e.g. "AuthenticAMD".</summary>
    public string Vendor { get; }

    /// <summary>cpuinfo "cpu family" (23 = 0x17 for Zen/Zen 2, 25 = 0x19 for Zen 3).</summary>
    public int Family { get; }

    public int Model { get; }

    /// <summary>cpuinfo "stepping"; -1 when absent.</summary>
    public int Stepping { get; }

    /// <summary>
    /// An AMD EPYC 7002 ("Rome", Zen 2), the generation whose CCX layout Emu's pinning plan is written for.
    /// See <see cref="IsEpyc7002Cpu"/> for the rule.
    /// </summary>
    public bool IsEpyc7002 { get; }

    public int Sockets { get; }

    public int PhysicalCores { get; }

    public int LogicalCpus { get; }

    /// <summary>SMT width: 1 without SMT.</summary>
    public int ThreadsPerCore { get; }

    /// <summary>Online logical CPUs in ascending number.</summary>
    public ImmutableArray<LogicalCpu> Cpus { get; }

    /// <summary>NUMA nodes in ascending id; one node when sysfs exposes none.</summary>
    public ImmutableArray<NumaNode> NumaNodes { get; }

    /// <summary>L3 domains ordered by their lowest CPU; empty when sysfs does not expose L3.</summary>
    public ImmutableArray<L3Domain> L3Domains { get; }

    /// <summary>
    /// Reads the topology now (emu_topology_open and the getters) under <paramref name="sysfsRoot"/>, or under
    /// EMU_SYSFS_ROOT as this process sees it when null, or under / when that is unset too.
    /// </summary>
    /// <exception cref="ShimException">ENOENT when the sysfs root holds no sys/devices/system/cpu.</exception>
    public static unsafe Topology Read(string? sysfsRoot = null)
    {
        sysfsRoot ??= Environment.GetEnvironmentVariable(SysfsRootVariable) ?? "";
        byte[] root = System.Text.Encoding.UTF8.GetBytes(sysfsRoot + "\0");
        nint raw;
        fixed (byte* r = root)
            Errno.ThrowIfError(EmuShim.emu_topology_open(r, &raw), "emu_topology_open");
        using var handle = new TopologyHandle(raw);
        nint topology = handle.DangerousGetHandle();

        emu_topology_summary summary;
        Errno.ThrowIfError(EmuShim.emu_topology_get_summary(topology, &summary), "emu_topology_get_summary");

        var cpus = ImmutableArray.CreateBuilder<LogicalCpu>(summary.logical_cpus);
        for (int i = 0; i < summary.logical_cpus; i++)
        {
            emu_cpu cpu;
            Errno.ThrowIfError(EmuShim.emu_topology_get_cpu(topology, i, &cpu), "emu_topology_get_cpu");
            cpus.Add(new LogicalCpu(cpu.cpu, cpu.package_id, cpu.core_id, cpu.core_index, cpu.node, cpu.l3_index,
                cpu.smt_index));
        }

        var nodes = ImmutableArray.CreateBuilder<NumaNode>(summary.numa_nodes);
        for (int i = 0; i < summary.numa_nodes; i++)
        {
            emu_numa_node node;
            Errno.ThrowIfError(EmuShim.emu_topology_get_node(topology, i, &node), "emu_topology_get_node");
            int distanceCount = Math.Clamp(node.distance_count, 0, (int)emu_limits.EMU_MAX_NODES);
            nodes.Add(new NumaNode(node.id, ImmutableArray.Create(node.cpus.ToArray()),
                ImmutableArray.Create(new ReadOnlySpan<int>(node.distances, distanceCount))));
        }

        var l3Domains = ImmutableArray.CreateBuilder<L3Domain>(summary.l3_domains);
        for (int i = 0; i < summary.l3_domains; i++)
        {
            emu_l3_domain l3;
            Errno.ThrowIfError(EmuShim.emu_topology_get_l3(topology, i, &l3), "emu_topology_get_l3");
            l3Domains.Add(new L3Domain(l3.id, ImmutableArray.Create(l3.cpus.ToArray()), checked((long)l3.size_bytes)));
        }

        return new Topology(summary, Utf8Z(summary.vendor, (int)emu_limits.EMU_VENDOR_LEN),
            Utf8Z(summary.model_name, (int)emu_limits.EMU_NAME_LEN), cpus.MoveToImmutable(), nodes.MoveToImmutable(),
            l3Domains.MoveToImmutable());
    }

    /// <summary>
    /// AMD family 17h, models 30h-3Fh, with "EPYC" in the model name. Rome ships as model 31h; the whole
    /// 30h-3Fh block is Zen 2's server die, so a later revision of it still counts. The name test is what
    /// tells EPYC 7002 from Threadripper 3000/PRO 3000, built from the same die with the same family and model.
    /// Milan (EPYC 7003, family 19h) and Naples (EPYC 7001, family 17h model 01h) do not count.
    /// </summary>
    public static bool IsEpyc7002Cpu(string vendor, int family, int model, string modelName) =>
        vendor == "AuthenticAMD" && family == 0x17 && model is >= 0x30 and <= 0x3F &&
        modelName.Contains("EPYC", StringComparison.Ordinal);

    // The shim NUL-terminates; a buffer without a NUL is still read only within its capacity.
    private static unsafe string Utf8Z(byte* chars, int capacity)
    {
        var bytes = new ReadOnlySpan<byte>(chars, capacity);
        int end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? bytes : bytes[..end]);
    }
}
