using System.Text.Json;

namespace Emu.Cli.Tests;

/// <summary>`emu topology --json` reproduces each fixture machine's expected.json exactly.</summary>
[TestFixture]
[NonParallelizable]
public sealed class TopologyCommandTests
{
    private static IEnumerable<string> Fixtures() =>
        Directory.GetDirectories(Path.Combine(CliHarness.RepoRoot, "tests", "fixtures", "sysfs")).Select(Path.GetFileName).Order()!;

    private static CliHarness.Result RunWithRoot(string? sysfsRoot, params string[] args)
    {
        var old = Environment.GetEnvironmentVariable("EMU_SYSFS_ROOT");
        Environment.SetEnvironmentVariable("EMU_SYSFS_ROOT", sysfsRoot);
        try
        {
            return CliHarness.Run(args);
        }
        finally
        {
            Environment.SetEnvironmentVariable("EMU_SYSFS_ROOT", old);
        }
    }

    [TestCaseSource(nameof(Fixtures))]
    public void TopologyJson_MatchesTheFixturesExpectedFacts(string fixture)
    {
        var dir = Path.Combine(CliHarness.RepoRoot, "tests", "fixtures", "sysfs", fixture);
        var r = RunWithRoot(dir, "topology", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        using var actual = JsonDocument.Parse(r.Stdout);
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        foreach (var prop in expected.RootElement.EnumerateObject())
        {
            Assert.That(actual.RootElement.TryGetProperty(prop.Name, out var got), Is.True, $"missing {prop.Name}");
            Assert.That(Normalize(got, prop.Name == "l3Domains"), Is.EqualTo(Normalize(prop.Value, prop.Name == "l3Domains")), prop.Name);
        }
    }

    [Test]
    public void Milan_IsNotReportedAsEpyc7002()
    {
        var dir = Path.Combine(CliHarness.RepoRoot, "tests", "fixtures", "sysfs", "epyc7713-1s-nps1");
        var r = RunWithRoot(dir, "topology", "--json");
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.That(doc.RootElement.GetProperty("family").GetInt32(), Is.EqualTo(0x19));
        Assert.That(doc.RootElement.GetProperty("isEpyc7002").GetBoolean(), Is.False);
    }

    [Test]
    public void TwoSocketNps4_PlansOneUnboundPoolPerNode()
    {
        var dir = Path.Combine(CliHarness.RepoRoot, "tests", "fixtures", "sysfs", "epyc7452-2s-nps4");
        var r = RunWithRoot(dir, "topology", "--json");
        using var doc = JsonDocument.Parse(r.Stdout);
        var plan = doc.RootElement.GetProperty("pinningPlan");
        Assert.That(plan.GetProperty("numaNodeWorkers").GetArrayLength(), Is.EqualTo(8));
        Assert.That(plan.GetProperty("l3DomainWorkers").GetArrayLength(), Is.EqualTo(16));
        var node5 = plan.GetProperty("numaNodeWorkers")[5];
        Assert.That(node5.GetProperty("cpus").EnumerateArray().Select(e => e.GetInt32()),
            Is.EquivalentTo(doc.RootElement.GetProperty("numaNodes")[5].GetProperty("cpus").EnumerateArray().Select(e => e.GetInt32())));
    }

    [Test]
    public void SysfsRootPointingAtNothing_IsOneLineAndExitTwo()
    {
        var r = RunWithRoot(Path.Combine(CliHarness.RepoRoot, "artifacts", "no-such-sysfs-root"), "topology");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("EMU_SYSFS_ROOT"));
    }

    private static string Normalize(JsonElement e, bool dropSize)
    {
        if (!dropSize) return e.GetRawText().Replace(" ", "").Replace("\n", "").Replace("\r", "");
        var items = e.EnumerateArray().Select(d => $"{d.GetProperty("id").GetInt32()}:{string.Join(',', d.GetProperty("cpus").EnumerateArray().Select(c => c.GetInt32()))}");
        return string.Join(';', items);
    }
}
