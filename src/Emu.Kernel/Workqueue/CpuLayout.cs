// The CPUs and NUMA nodes a WorkqueueSystem lays its pools over: the kernel's cpu_possible_mask,
// cpu_to_node() and cpumask_of_node(). Read from the machine (Emu.Interop.Topology) or given by hand, so tests
// can lay a two-node system over the two CPUs of a one-node machine.
using System.Runtime.CompilerServices;
using Emu.Interop;

namespace Emu.Kernel;

/// <summary>CPU numbers grouped by NUMA node.</summary>
public sealed class CpuLayout
{
    private readonly int[][] _nodeCpus; // I
    private readonly int[] _cpuToNode;  // I: indexed by CPU number, -1 for a number that is not a CPU here
    private readonly int[] _cpus;       // I: ascending

    /// <summary>A layout with <paramref name="nodeCpus"/>[n] the CPUs of node n.</summary>
    /// <exception cref="ArgumentException">No nodes, an empty node, a negative CPU or a CPU in two nodes.</exception>
    public CpuLayout(IReadOnlyList<IReadOnlyList<int>> nodeCpus)
    {
        ArgumentNullException.ThrowIfNull(nodeCpus);
        if (nodeCpus.Count == 0)
        {
            throw new ArgumentException("a CPU layout needs at least one node", nameof(nodeCpus));
        }

        _nodeCpus = new int[nodeCpus.Count][];
        var all = new SortedSet<int>();
        for (int node = 0; node < nodeCpus.Count; node++)
        {
            int[] cpus = nodeCpus[node].Order().ToArray();
            if (cpus.Length == 0)
            {
                throw new ArgumentException($"node {node} has no CPUs", nameof(nodeCpus));
            }

            foreach (int cpu in cpus)
            {
                if (cpu < 0 || !all.Add(cpu))
                {
                    throw new ArgumentException($"CPU {cpu} is negative or in two nodes", nameof(nodeCpus));
                }
            }

            _nodeCpus[node] = cpus;
        }

        _cpus = all.ToArray();
        _cpuToNode = new int[_cpus[^1] + 1];
        Array.Fill(_cpuToNode, -1);
        for (int node = 0; node < _nodeCpus.Length; node++)
        {
            foreach (int cpu in _nodeCpus[node])
            {
                _cpuToNode[cpu] = node;
            }
        }
    }

    /// <summary>The machine's layout from the shim's topology (online CPUs per NUMA node).</summary>
    public static CpuLayout FromTopology(Topology topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var nodes = new List<IReadOnlyList<int>>();
        foreach (NumaNode node in topology.NumaNodes)
        {
            if (node.Cpus.Length != 0)
            {
                nodes.Add(node.Cpus);
            }
        }

        return new CpuLayout(nodes);
    }

    /// <summary>Possible CPUs, ascending (cpu_possible_mask).</summary>
    public IReadOnlyList<int> Cpus => _cpus;

    /// <summary>Number of CPUs.</summary>
    public int NrCpus => _cpus.Length;

    /// <summary>Number of NUMA nodes (nr_node_ids).</summary>
    public int NrNodes => _nodeCpus.Length;

    /// <summary>Highest CPU number plus one (nr_cpu_ids).</summary>
    public int NrCpuIds => _cpuToNode.Length;

    /// <summary>cpumask_of_node(): the CPUs of <paramref name="node"/>, ascending.</summary>
    public IReadOnlyList<int> CpusOfNode(int node) => _nodeCpus[node];

    /// <summary>cpu_possible(): whether <paramref name="cpu"/> is a CPU of this layout.</summary>
    public bool IsPossible(int cpu) => (uint)cpu < (uint)_cpuToNode.Length && _cpuToNode[cpu] >= 0;

    /// <summary>cpu_to_node().</summary>
    public int CpuToNode(int cpu)
    {
        if (!IsPossible(cpu))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(cpu), $"CPU {cpu} is not in the layout");
        }

        return _cpuToNode[cpu];
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Join(' ', _nodeCpus.Select((cpus, node) => $"node{node}:{string.Join(',', cpus)}"));

    // raw_smp_processor_id(): the CPU the calling thread runs on, folded onto the layout when the layout does not
    // describe this machine (a fake node layout in tests).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal int CurrentCpu()
    {
        int cpu = Thread.GetCurrentProcessorId();
        if ((uint)cpu < (uint)_cpuToNode.Length && _cpuToNode[cpu] >= 0)
        {
            return cpu;
        }

        return _cpus[(int)((uint)cpu % (uint)_cpus.Length)];
    }

    internal int[] NodeCpusArray(int node) => _nodeCpus[node];
}
