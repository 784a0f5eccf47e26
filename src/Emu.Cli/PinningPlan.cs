using Emu.Interop;

namespace Emu.Cli;

/// <summary>
/// Where Emu's workers run on a topology: unbound workqueue pools one per NUMA node (kernel 4.4's per-node
/// pwqs, workqueue.c), L3-domain workers for the 'cache' affinity scope (v6.6), one blk-mq hardware queue per
/// node with its completion thread on that node, and bound pools on every CPU.
/// </summary>
internal sealed record PinningPlan(
    IReadOnlyList<PinningPlan.Placement> NodeWorkers,
    IReadOnlyList<PinningPlan.Placement> L3Workers,
    IReadOnlyList<PinningPlan.Placement> HardwareQueues,
    IReadOnlyList<int> BoundCpus)
{
    public sealed record Placement(int Domain, int Node, IReadOnlyList<int> Cpus);

    public static PinningPlan For(Topology t)
    {
        var nodeOfCpu = new Dictionary<int, int>();
        foreach (var n in t.NumaNodes)
            foreach (var c in n.Cpus) nodeOfCpu[c] = n.Id;
        var nodes = t.NumaNodes.Where(n => n.Cpus.Length > 0).Select(n => new Placement(n.Id, n.Id, n.Cpus)).ToList();
        var l3 = t.L3Domains.Select(l => new Placement(l.Id, l.Cpus.Length > 0 ? nodeOfCpu.GetValueOrDefault(l.Cpus[0]) : 0, l.Cpus)).ToList();
        var hctx = nodes.Select((n, i) => new Placement(i, n.Node, n.Cpus)).ToList();
        var all = t.Cpus.Select(c => c.Cpu).Order().ToList();
        return new PinningPlan(nodes, l3, hctx, all);
    }
}
