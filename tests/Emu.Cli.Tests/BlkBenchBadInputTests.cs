namespace Emu.Cli.Tests;

/// <summary>`emu blk bench` refuses bad input with one line and exit 2, creating and modifying nothing.</summary>
[TestFixture]
[NonParallelizable]
public sealed class BlkBenchBadInputTests
{
    private string _dir = null!;
    private string _file = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = CliHarness.ScratchDir(nameof(BlkBenchBadInputTests));
        _file = Path.Combine(_dir, "small.img");
        File.WriteAllBytes(_file, new byte[1 << 20]);
    }

    private static void AssertUsageError(CliHarness.Result r, string mentions)
    {
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.StderrLines, Has.Length.EqualTo(1), r.Stderr);
        Assert.That(r.Stderr, Does.StartWith("emu: ").And.Contain(mentions));
        Assert.That(r.Stdout, Is.Empty);
    }

    [Test]
    public void MissingPath_IsRefusedAndNotCreated()
    {
        var missing = Path.Combine(_dir, "missing.img");
        var r = CliHarness.Run("blk", "bench", "--filename", missing, "--runtime", "1");
        AssertUsageError(r, "does not exist");
        Assert.That(File.Exists(missing), Is.False);
    }

    [Test]
    public void Directory_IsRefused()
    {
        var r = CliHarness.Run("blk", "bench", "--filename", _dir, "--runtime", "1");
        AssertUsageError(r, "is a directory");
    }

    [Test]
    public void FileSmallerThanSize_IsRefusedAndLeftUntouched()
    {
        var before = File.GetLastWriteTimeUtc(_file);
        var r = CliHarness.Run("blk", "bench", "--filename", _file, "--size", "64M", "--runtime", "1");
        AssertUsageError(r, "smaller than --size");
        Assert.That(new FileInfo(_file).Length, Is.EqualTo(1 << 20));
        Assert.That(File.GetLastWriteTimeUtc(_file), Is.EqualTo(before));
    }

    [Test]
    public void FileOnTmpfs_IsRefusedWithADiskBackedSuggestion()
    {
        Assume.That(Directory.Exists("/dev/shm"), "no /dev/shm tmpfs on this machine");
        var shm = Path.Combine("/dev/shm", $"emu-test-{Environment.ProcessId}.img");
        File.WriteAllBytes(shm, new byte[1 << 20]);
        try
        {
            var r = CliHarness.Run("blk", "bench", "--filename", shm, "--runtime", "1");
            AssertUsageError(r, "tmpfs");
            Assert.That(r.Stderr, Does.Contain("disk-backed"));
            Assert.That(new FileInfo(shm).Length, Is.EqualTo(1 << 20));
        }
        finally
        {
            File.Delete(shm);
        }
    }

    [Test]
    public void BlockSizeNotAMultipleOfTheLogicalBlockSize_IsRefused()
    {
        var r = CliHarness.Run("blk", "bench", "--filename", _file, "--bs", "1000", "--runtime", "1");
        AssertUsageError(r, "logical block size");
    }

    [Test]
    public void IoDepthZero_IsRefused()
    {
        var r = CliHarness.Run("blk", "bench", "--filename", _file, "--iodepth", "0", "--runtime", "1");
        AssertUsageError(r, "--iodepth");
    }

    [Test]
    public void UnknownEngine_IsRefused()
    {
        var r = CliHarness.Run("blk", "bench", "--filename", _file, "--ioengine", "libaio", "--runtime", "1");
        AssertUsageError(r, "--ioengine 'libaio'");
    }

    [Test]
    public void UnknownOption_IsRefusedWithAPointerToHelp()
    {
        var r = CliHarness.Run("blk", "bench", "--filename", _file, "--frobnicate");
        AssertUsageError(r, "--help");
    }

    [Test]
    public void ValidRun_ReportsIopsAndLatencyAsJson()
    {
        var r = CliHarness.Run("blk", "bench", "--filename", _file, "--rw", "randread", "--bs", "4k", "--iodepth", "4", "--runtime", "0.3", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        Assert.That(doc.RootElement.GetProperty("iops").GetDouble(), Is.GreaterThan(0));
        Assert.That(doc.RootElement.GetProperty("bwBytesPerSec").GetDouble(), Is.GreaterThan(0));
        var lat = doc.RootElement.GetProperty("latencyUs");
        Assert.That(lat.GetProperty("p50").GetDouble(), Is.GreaterThan(0));
        Assert.That(lat.GetProperty("p999").GetDouble(), Is.GreaterThanOrEqualTo(lat.GetProperty("p99").GetDouble()));
        Assert.That(doc.RootElement.GetProperty("errors").GetInt64(), Is.Zero);
    }
}

/// <summary>`emu blk bench` through the block layer's in-memory engines.</summary>
[TestFixture]
[NonParallelizable]
public sealed class BlkBenchEngineTests
{
    [TestCase("null")]
    [TestCase("mem")]
    public void InMemoryEngine_RunsThroughTheBlockLayerWithoutAFile(string engine)
    {
        var r = CliHarness.Run("blk", "bench", "--ioengine", engine, "--size", "16M", "--iodepth", "4", "--runtime", "0.3", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        Assert.That(doc.RootElement.GetProperty("ioengine").GetString(), Is.EqualTo(engine));
        Assert.That(doc.RootElement.GetProperty("ios").GetInt64(), Is.GreaterThan(0));
        Assert.That(doc.RootElement.GetProperty("errors").GetInt64(), Is.Zero);
    }

    [Test]
    public void RawLayerWithTheNullEngine_IsRefused()
    {
        var r = CliHarness.Run("blk", "bench", "--ioengine", "null", "--layer", "raw", "--runtime", "0.3");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("--layer raw"));
    }

    [Test]
    public void DiskEngineWithoutAFilename_IsRefused()
    {
        var r = CliHarness.Run("blk", "bench", "--ioengine", "io_uring", "--runtime", "0.3");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("--filename is required"));
    }
}
