using System.Text.Json;
using System.Text.Json.Serialization;

namespace Emu.Interop.Tests;

/// <summary>
/// Topology.Read over the sysfs fixture trees of tests/fixtures/sysfs (EMU_SYSFS_ROOT), against the
/// expected.json written beside each from the machine model, never from the shim.
/// </summary>
/// <remarks>
/// Not parallelizable: the shim reads EMU_SYSFS_ROOT from the process environment, which these tests change.
/// </remarks>
[NonParallelizable]
public sealed class TopologyTests
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectRequiredConstructorParameters = true,
    };

    private static string FixturesDir => Path.Combine(Repo.Root, "tests", "fixtures", "sysfs");

    public static IEnumerable<TestCaseData> Fixtures() =>
        Directory.GetDirectories(FixturesDir).Order(StringComparer.Ordinal)
            .Select(dir => new TestCaseData(Path.GetFileName(dir)).SetArgDisplayNames(Path.GetFileName(dir)));

    [Test]
    public void Fixtures_CoverRomeOneAndTwoSocketAndMilan()
    {
        Assert.That(Fixtures().Select(f => (string)f.Arguments[0]!),
            Is.SupersetOf(new[] { "epyc7702p-1s-nps1", "epyc7452-2s-nps4", "epyc7713-1s-nps1" }));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void Read_FixtureTree_EqualsExpectedJson(string fixture)
    {
        string root = Path.Combine(FixturesDir, fixture);
        ExpectedTopology expected = JsonSerializer.Deserialize<ExpectedTopology>(
            File.ReadAllText(Path.Combine(root, "expected.json")), s_json)!;

        Topology topology = ReadWithSysfsRoot(root);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(topology.ModelName, Is.EqualTo(expected.ModelName), "modelName");
            Assert.That(topology.Vendor, Is.EqualTo(expected.Vendor), "vendor");
            Assert.That(topology.Family, Is.EqualTo(expected.Family), "family");
            Assert.That(topology.Model, Is.EqualTo(expected.Model), "model");
            Assert.That(topology.Stepping, Is.EqualTo(expected.Stepping), "stepping");
            Assert.That(topology.IsEpyc7002, Is.EqualTo(expected.IsEpyc7002), "isEpyc7002");
            Assert.That(topology.Sockets, Is.EqualTo(expected.Sockets), "sockets");
            Assert.That(topology.PhysicalCores, Is.EqualTo(expected.PhysicalCores), "physicalCores");
            Assert.That(topology.LogicalCpus, Is.EqualTo(expected.LogicalCpus), "logicalCpus");
            Assert.That(topology.ThreadsPerCore, Is.EqualTo(expected.Smt), "smt");
            Assert.That(topology.NumaNodes.Select(n => n.Id), Is.EqualTo(expected.NumaNodes.Select(n => n.Id)), "numaNodes ids");
            for (int i = 0; i < Math.Min(topology.NumaNodes.Length, expected.NumaNodes.Length); i++)
            {
                Assert.That(topology.NumaNodes[i].Cpus, Is.EqualTo(expected.NumaNodes[i].Cpus), $"numaNodes[{i}].cpus");
                Assert.That(topology.NumaNodes[i].Distances, Is.EqualTo(expected.NumaNodes[i].Distances), $"numaNodes[{i}].distances");
            }
            Assert.That(topology.L3Domains.Select(d => d.Id), Is.EqualTo(expected.L3Domains.Select(d => d.Id)), "l3Domains ids");
            for (int i = 0; i < Math.Min(topology.L3Domains.Length, expected.L3Domains.Length); i++)
            {
                Assert.That(topology.L3Domains[i].Cpus, Is.EqualTo(expected.L3Domains[i].Cpus), $"l3Domains[{i}].cpus");
                Assert.That(topology.L3Domains[i].SizeBytes, Is.EqualTo(expected.L3Domains[i].SizeBytes), $"l3Domains[{i}].sizeBytes");
            }
        }
        AssertCpusAgreeWithNodesAndDomains(topology);
    }

    [Test]
    public void Read_ThisMachine_DescribesEveryOnlineCpuConsistently()
    {
        Topology topology = ReadWithSysfsRoot(null);

        Assert.That(topology.LogicalCpus, Is.Positive);
        Assert.That(topology.Cpus.Select(c => c.Cpu), Is.SupersetOf(Affinity.GetCurrentThread()),
            "every CPU this thread may run on is online");
        AssertCpusAgreeWithNodesAndDomains(topology);
    }

    [Test]
    public void Read_SysfsRootPointingAtNothing_ThrowsEnoent()
    {
        string missing = Path.Combine(Repo.Root, "artifacts", "tests", "no-such-sysfs-" + Guid.NewGuid().ToString("N"));

        var e = Assert.Throws<ShimException>(() => ReadWithSysfsRoot(missing));

        Assert.That(e!.Errno, Is.EqualTo(Errno.ENOENT));
        Assert.That(e.Message, Does.StartWith("emu_topology_open: "));
    }

    [TestCase("AuthenticAMD", 0x17, 0x31, "AMD EPYC 7702P 64-Core Processor", true, TestName = "IsEpyc7002Cpu_Rome_IsTrue")]
    [TestCase("AuthenticAMD", 0x17, 0x30, "AMD EPYC 7xx2 Engineering Sample", true, TestName = "IsEpyc7002Cpu_OtherModelOfTheRomeBlock_IsTrue")]
    [TestCase("AuthenticAMD", 0x17, 0x31, "AMD Ryzen Threadripper 3990X 64-Core Processor", false, TestName = "IsEpyc7002Cpu_ThreadripperOnTheSameDie_IsFalse")]
    [TestCase("AuthenticAMD", 0x17, 0x01, "AMD EPYC 7601 32-Core Processor", false, TestName = "IsEpyc7002Cpu_Naples_IsFalse")]
    [TestCase("AuthenticAMD", 0x19, 0x01, "AMD EPYC 7713 64-Core Processor", false, TestName = "IsEpyc7002Cpu_Milan_IsFalse")]
    [TestCase("AuthenticAMD", 0x17, 0x71, "AMD Ryzen 9 3950X 16-Core Processor", false, TestName = "IsEpyc7002Cpu_DesktopZen2_IsFalse")]
    [TestCase("GenuineIntel", 0x17, 0x31, "EPYC lookalike", false, TestName = "IsEpyc7002Cpu_OtherVendor_IsFalse")]
    public void IsEpyc7002Cpu(string vendor, int family, int model, string modelName, bool expected)
    {
        Assert.That(Topology.IsEpyc7002Cpu(vendor, family, model, modelName), Is.EqualTo(expected));
    }

    private static Topology ReadWithSysfsRoot(string? root) => Topology.Read(root ?? "");

    // The per-CPU records against the summary, the nodes and the L3 domains they index.
    private static void AssertCpusAgreeWithNodesAndDomains(Topology topology)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(topology.Cpus, Has.Length.EqualTo(topology.LogicalCpus), "one record per logical CPU");
            Assert.That(topology.Cpus.Select(c => c.Cpu), Is.Ordered.Ascending.And.Unique, "ascending logical numbers");
            Assert.That(topology.Cpus.Select(c => c.PackageId).Distinct().Count(), Is.EqualTo(topology.Sockets), "sockets");
            Assert.That(topology.Cpus.Select(c => c.CoreIndex).Distinct().Order(),
                Is.EqualTo(Enumerable.Range(0, topology.PhysicalCores)), "dense core indexes");
            Assert.That(topology.LogicalCpus, Is.EqualTo(topology.PhysicalCores * topology.ThreadsPerCore), "SMT width");
            Assert.That(topology.NumaNodes.SelectMany(n => n.Cpus).Order(), Is.EqualTo(topology.Cpus.Select(c => c.Cpu)),
                "the nodes partition the CPUs");
            foreach (NumaNode node in topology.NumaNodes)
                Assert.That(node.Distances, Has.Length.EqualTo(topology.NumaNodes.Length), $"distance row of node {node.Id}");
            foreach (LogicalCpu cpu in topology.Cpus)
            {
                Assert.That(cpu.SmtIndex, Is.InRange(0, topology.ThreadsPerCore - 1), $"cpu {cpu.Cpu} SMT index");
                Assert.That(topology.NumaNodes.Single(n => n.Id == cpu.Node).Cpus, Does.Contain(cpu.Cpu), $"cpu {cpu.Cpu} in node {cpu.Node}");
                if (topology.L3Domains.IsEmpty)
                    Assert.That(cpu.L3Index, Is.EqualTo(-1), $"cpu {cpu.Cpu} L3 index without L3 domains");
                else
                    Assert.That(topology.L3Domains[cpu.L3Index].Cpus, Does.Contain(cpu.Cpu), $"cpu {cpu.Cpu} in L3 domain {cpu.L3Index}");
            }
            Assert.That(topology.Cpus.GroupBy(c => c.CoreIndex).Select(g => g.Select(c => c.SmtIndex).Order()),
                Is.All.EqualTo(Enumerable.Range(0, topology.ThreadsPerCore)), "each core has SMT indexes 0..width-1");
        }
    }

    private sealed record ExpectedTopology(
        string ModelName, string Vendor, int Family, int Model, int Stepping, bool IsEpyc7002, int Sockets,
        int PhysicalCores, int LogicalCpus, int Smt, ExpectedNode[] NumaNodes, ExpectedL3Domain[] L3Domains);

    private sealed record ExpectedNode(int Id, int[] Cpus, int[] Distances);

    private sealed record ExpectedL3Domain(int Id, int[] Cpus, long SizeBytes);
}
