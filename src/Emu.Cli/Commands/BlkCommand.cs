using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Emu.Cli.Bench;
using Emu.Cli.Progress;
using Emu.Interop;

namespace Emu.Cli.Commands;

/// <summary>`emu blk`: the block layer's own tools. `emu blk bench` is a fio-style load generator.</summary>
internal static class BlkCommand
{
    public static Command Create()
    {
        var blk = new Command("blk", "Block-layer tools.");
        blk.Subcommands.Add(CreateBench());
        return blk;
    }

    private static Command CreateBench()
    {
        var filename = new Option<string?>("--filename") { Description = "File or block device to load (opened with O_DIRECT). It must exist and hold at least --size bytes. Not used by the mem and null engines." };
        var size = new Option<string?>("--size") { Description = "Bytes of the file to use (fio syntax: 1G, 512M); default: the whole file." };
        var rw = new Option<string>("--rw") { Description = "read, write, randread or randwrite.", DefaultValueFactory = _ => "randread" };
        var bs = new Option<string>("--bs") { Description = "Block size (a multiple of the device's logical block size).", DefaultValueFactory = _ => "4k" };
        var iodepth = new Option<int>("--iodepth") { Description = "I/Os kept in flight per job.", DefaultValueFactory = _ => 32 };
        var numjobs = new Option<int>("--numjobs") { Description = "Jobs (threads), each with its own ring.", DefaultValueFactory = _ => 1 };
        var runtime = new Option<string>("--runtime") { Description = "Seconds to run (fio syntax: 10, 10s, 1m).", DefaultValueFactory = _ => "10" };
        var ioengine = new Option<string>("--ioengine") { Description = "io_uring, psync, mem (a RAM disk of --size) or null (completes at once, no data: the layer's own overhead).", DefaultValueFactory = _ => "io_uring" };
        var layer = new Option<string>("--layer") { Description = "blk: bios through Emu's blk-mq block layer (default); raw: straight on the shim's engine, like fio.", DefaultValueFactory = _ => "blk" };
        var direct = new Option<int>("--direct") { Description = "1: O_DIRECT (default); 0: through the page cache.", DefaultValueFactory = _ => 1 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the random offsets.", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var quiet = new Option<bool>("--quiet") { Description = "No progress display; only the results." };
        var command = new Command("bench", "fio-style throughput and latency through Emu's I/O engine.")
        {
            filename, size, rw, bs, iodepth, numjobs, runtime, ioengine, layer, direct, seed, json, quiet,
        };
        command.SetAction(p => Execute(
            p.GetValue(filename), p.GetValue(size), p.GetValue(rw)!, p.GetValue(bs)!, p.GetValue(iodepth),
            p.GetValue(numjobs), p.GetValue(runtime)!, p.GetValue(ioengine)!, p.GetValue(layer)!, p.GetValue(direct), p.GetValue(seed), p.GetValue(json), p.GetValue(quiet)));
        return command;
    }

    private static int Execute(string? filename, string? sizeText, string rwText, string bsText, int iodepth, int numjobs,
        string runtimeText, string ioengine, string layer, int direct, ulong seed, bool json, bool quiet)
    {
        var rw = BlkBenchOptions.ParseRw(rwText);
        long bsBytes = SizeParser.Parse(bsText, "--bs");
        if (bsBytes > 64L << 20) throw new UsageException($"--bs {bsText} is larger than 64M; use a smaller block size");
        if (iodepth < 1 || iodepth > 4096) throw new UsageException($"--iodepth {iodepth} is out of range; use 1 to 4096");
        if (numjobs < 1 || numjobs > 256) throw new UsageException($"--numjobs {numjobs} is out of range; use 1 to 256");
        if (direct is not (0 or 1)) throw new UsageException($"--direct {direct} is not 0 or 1");
        if (layer is not ("blk" or "raw")) throw new UsageException($"--layer '{layer}' is not a layer; use blk or raw");
        bool inMemory = ioengine is "mem" or "null";
        var engine = ioengine switch
        {
            "io_uring" => IoEngine.IoUring,
            "psync" => IoEngine.Psync,
            "mem" or "null" when layer == "blk" => IoEngine.Auto,
            "mem" or "null" => throw new UsageException($"--ioengine {ioengine} exists only in the block layer; drop --layer raw"),
            _ => throw new UsageException($"--ioengine '{ioengine}' is not an engine Emu has; use io_uring, psync, mem or null"),
        };
        var runtime = ParseRuntime(runtimeText);
        long? wantedSize = sizeText is null ? null : SizeParser.Parse(sizeText, "--size");
        if (inMemory && wantedSize is null) wantedSize = 1L << 30;
        if (!inMemory && filename is null)
            throw new UsageException($"--filename is required with --ioengine {ioengine}; name a file or block device on a disk-backed filesystem");

        using var device = inMemory ? null : OpenDevice(filename!, wantedSize, direct == 1);
        long size = wantedSize ?? (long)device!.SizeBytes;
        uint lbs = device is null ? 512 : direct == 1 ? Math.Max(device.LogicalBlockSize, device.DioOffsetAlign) : 1;
        if (bsBytes % lbs != 0)
            throw new UsageException($"--bs {bsText} is not a multiple of {filename}'s logical block size ({lbs} bytes); use a multiple such as {Math.Max(lbs, 4096)}");
        if (size < bsBytes)
            throw new UsageException($"--size {SizeParser.Format(size)} is smaller than --bs {bsText}; raise --size or lower --bs");

        var options = new BlkBenchOptions(filename ?? $"({ioengine})", size - size % bsBytes, rw, (int)bsBytes, iodepth, numjobs, runtime, ioengine, direct == 1, seed);
        var result = ProgressDisplay.For(json || quiet).RunTimed("blk bench", runtime,
            () => layer == "raw" ? RawEngineBench.Run(options, device!, engine) : BlockLayerBench.Run(options, device));
        if (result.Engine != ioengine)
            Console.Error.WriteLine($"emu: warning: io_uring is unavailable here; using the psync engine");
        if (json) WriteJson(options, result);
        else WriteText(options, result);
        return result.Errors == 0 ? CommandRunner.ExitOk : CommandRunner.ExitDetected;
    }

    internal static BlockDevice OpenDevice(string path, long? size, bool direct)
    {
        var flags = direct ? BlockDeviceOpenFlags.None : BlockDeviceOpenFlags.Buffered;
        BlockDevice device;
        try
        {
            device = BlockDevice.Open(path, flags, (ulong)(size ?? 0));
        }
        catch (ShimException e)
        {
            throw new UsageException(e.Errno switch
            {
                Errno.ENOENT => $"{path} does not exist; create it first (e.g. fallocate -l 1G {path}) or name an existing file or block device",
                Errno.EISDIR => $"{path} is a directory; --filename needs a file or a block device",
                Errno.EINVAL => $"{path} is on a filesystem that refuses O_DIRECT (tmpfs?); use a file on a disk-backed filesystem such as ext4 or xfs",
                Errno.EFBIG => $"{path} is smaller than --size {SizeParser.Format(size ?? 0)}; grow it (fallocate -l {size} {path}) or lower --size",
                Errno.EACCES => $"{path}: permission denied",
                Errno.ENOTBLK => $"{path} is neither a regular file nor a block device",
                _ => $"cannot open {path}: {e.Message}",
            });
        }
        if (direct && device.IsMemoryBacked)
        {
            device.Dispose();
            throw new UsageException($"{path} is on tmpfs/ramfs, where O_DIRECT is a memory copy, not disk I/O; use a file on a disk-backed filesystem such as ext4 or xfs");
        }
        return device;
    }

    private static TimeSpan ParseRuntime(string text)
    {
        var s = text.Trim().ToLowerInvariant();
        double scale = 1;
        if (s.EndsWith("ms")) { scale = 0.001; s = s[..^2]; }
        else if (s.EndsWith('s')) s = s[..^1];
        else if (s.EndsWith('m')) { scale = 60; s = s[..^1]; }
        else if (s.EndsWith('h')) { scale = 3600; s = s[..^1]; }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v <= 0 || double.IsInfinity(v))
            throw new UsageException($"--runtime '{text}' is not a duration; use seconds such as 10, 10s or 1m");
        return TimeSpan.FromSeconds(v * scale);
    }

    private static void WriteText(BlkBenchOptions o, BlkBenchResult r)
    {
        Console.WriteLine($"{o.Filename}: rw={BlkBenchOptions.FormatRw(o.Rw)} bs={SizeParser.Format(o.BlockSize)} iodepth={o.IoDepth} numjobs={o.NumJobs} ioengine={r.Engine} direct={(o.Direct ? 1 : 0)} size={SizeParser.Format(o.SizeBytes)}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  iops={r.Iops:F0}  bw={r.BandwidthBytesPerSec / (1 << 20):F1}MiB/s  ios={r.Ios}  runtime={r.Seconds:F2}s  errors={r.Errors}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  clat (usec): p50={r.LatP50Ns / 1000.0:F1}  p99={r.LatP99Ns / 1000.0:F1}  p99.9={r.LatP999Ns / 1000.0:F1}  mean={r.LatMeanNs / 1000.0:F1}  max={r.LatMaxNs / 1000.0:F1}"));
    }

    private static void WriteJson(BlkBenchOptions o, BlkBenchResult r)
    {
        Console.WriteLine(JsonText.Of(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("iops", Math.Round(r.Iops, 1));
            w.WriteNumber("bwBytesPerSec", Math.Round(r.BandwidthBytesPerSec));
            w.WriteStartObject("latencyUs");
            w.WriteNumber("p50", r.LatP50Ns / 1000.0);
            w.WriteNumber("p99", r.LatP99Ns / 1000.0);
            w.WriteNumber("p999", r.LatP999Ns / 1000.0);
            w.WriteNumber("mean", Math.Round(r.LatMeanNs / 1000.0, 3));
            w.WriteNumber("max", r.LatMaxNs / 1000.0);
            w.WriteEndObject();
            w.WriteNumber("ios", r.Ios);
            w.WriteNumber("bytes", r.Bytes);
            w.WriteNumber("errors", r.Errors);
            w.WriteNumber("runtimeSec", Math.Round(r.Seconds, 3));
            w.WriteString("filename", o.Filename);
            w.WriteString("rw", BlkBenchOptions.FormatRw(o.Rw));
            w.WriteNumber("bs", o.BlockSize);
            w.WriteNumber("iodepth", o.IoDepth);
            w.WriteNumber("numjobs", o.NumJobs);
            w.WriteNumber("size", o.SizeBytes);
            w.WriteString("ioengine", r.Engine);
            w.WriteNumber("direct", o.Direct ? 1 : 0);
            w.WriteEndObject();
        }));
    }
}
