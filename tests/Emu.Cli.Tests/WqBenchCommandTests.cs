namespace Emu.Cli.Tests;

/// <summary>`emu wq bench`: bad input is one line and exit 2; a small run reports both mechanisms.</summary>
[TestFixture]
[NonParallelizable]
public sealed class WqBenchCommandTests
{
    [TestCase("--items", "0")]
    [TestCase("--rounds", "0")]
    [TestCase("--max-active", "100000")]
    public void OutOfRangeOption_IsOneLineAndExitTwo(string option, string value)
    {
        var r = CliHarness.Run("wq", "bench", option, value);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain(option));
    }

    [Test]
    public void SmallRun_ReportsEmuAndThreadPoolThroughputAndTheirRatio()
    {
        var r = CliHarness.Run("wq", "bench", "--items", "2000", "--rounds", "1", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        var emu = doc.RootElement.GetProperty("emuOpsPerSec").GetDouble();
        var pool = doc.RootElement.GetProperty("threadPoolOpsPerSec").GetDouble();
        Assert.That(emu, Is.GreaterThan(0));
        Assert.That(pool, Is.GreaterThan(0));
        Assert.That(doc.RootElement.GetProperty("ratio").GetDouble(), Is.EqualTo(emu / pool).Within(0.0005 + 0.01 * emu / pool), "ratio is emu / ThreadPool, rounded in the JSON");
        var alone = doc.RootElement.GetProperty("emuUnboundAloneNsPerItem");
        Assert.That(alone.GetProperty("queueWork").GetDouble(), Is.GreaterThan(0));
        Assert.That(alone.GetProperty("workers").GetDouble(), Is.GreaterThan(0));
    }

    [Test]
    public void TextRun_Redirected_ShowsProgressLines_AndQuietDropsThem()
    {
        var shown = CliHarness.Run("wq", "bench", "--items", "2000", "--rounds", "1");
        var quiet = CliHarness.Run("wq", "bench", "--items", "2000", "--rounds", "1", "--quiet");

        Assert.That((shown.ExitCode, quiet.ExitCode), Is.EqualTo((0, 0)), shown.Stderr + quiet.Stderr);
        Assert.That(shown.Stdout, Does.Contain("wq bench ["), "plain progress lines when the output is redirected");
        Assert.That(quiet.Stdout, Does.Not.Contain("wq bench ["));
        Assert.That(quiet.Stdout, Does.Contain("threadpool"), "the results are still printed");
    }
}
