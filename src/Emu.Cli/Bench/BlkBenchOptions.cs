namespace Emu.Cli.Bench;

/// <summary>fio's access patterns (--rw).</summary>
internal enum RwPattern { Read, Write, RandRead, RandWrite }

/// <summary>`emu blk bench` settings, named as fio names them.</summary>
internal sealed record BlkBenchOptions(
    string Filename,
    long SizeBytes,
    RwPattern Rw,
    int BlockSize,
    int IoDepth,
    int NumJobs,
    TimeSpan Runtime,
    string IoEngine,
    bool Direct,
    ulong Seed)
{
    public bool IsWrite => Rw is RwPattern.Write or RwPattern.RandWrite;
    public bool IsRandom => Rw is RwPattern.RandRead or RwPattern.RandWrite;

    public static RwPattern ParseRw(string text) => text switch
    {
        "read" => RwPattern.Read,
        "write" => RwPattern.Write,
        "randread" => RwPattern.RandRead,
        "randwrite" => RwPattern.RandWrite,
        _ => throw new UsageException($"--rw '{text}' is not supported; use read, write, randread or randwrite"),
    };

    public static string FormatRw(RwPattern rw) => rw switch
    {
        RwPattern.Read => "read",
        RwPattern.Write => "write",
        RwPattern.RandRead => "randread",
        _ => "randwrite",
    };
}

/// <summary>What one run measured.</summary>
internal sealed record BlkBenchResult(
    long Ios,
    long Bytes,
    double Seconds,
    long LatP50Ns,
    long LatP99Ns,
    long LatP999Ns,
    double LatMeanNs,
    long LatMaxNs,
    string Engine,
    long Errors)
{
    public double Iops => Ios / Seconds;
    public double BandwidthBytesPerSec => Bytes / Seconds;
}
