// Emu's build, run by Cake.Tool as a local tool:
//   dotnet tool restore && dotnet cake cake.cs --target=NAME
// Targets: Deps, Native, Bindings, Build, Test, Publish, Main, Default (= Deps, Native, Build), and the user
// targets Repro, Stress, Compare, BenchBlock, BenchWq and Bench (= BenchBlock, BenchWq and a quick Compare).
// Every path is relative to this file's folder; every tool it runs is printed before it runs.

#nullable enable

using System.Diagnostics;
using System.Globalization;
using System.Xml.Linq;

var target = Argument("target", "Default");
var configuration = Argument("configuration", "Release");
var root = MakeAbsolute(Directory(".")).FullPath;
var nativeDir = $"{root}/artifacts/native";
var cliDir = $"{root}/artifacts/emu";
var testResults = $"{root}/artifacts/test-results";

// The Test target's summary must be the very last line on stdout, after Cake's own task table, so it is
// printed when the process exits.
string? testSummary = null;
AppDomain.CurrentDomain.ProcessExit += (_, _) =>
{
    if (testSummary is null) return;
    Console.Out.Flush();
    Console.Error.Flush();
    Console.WriteLine(testSummary);
    Console.Out.Flush();
};

int Run(string file, string args, string? workDir = null, bool check = true, IDictionary<string, string>? env = null)
{
    Information($"$ {file} {args}");
    var psi = new ProcessStartInfo(file, args) { WorkingDirectory = workDir ?? root, UseShellExecute = false };
    if (env != null) foreach (var kv in env) psi.Environment[kv.Key] = kv.Value;
    using var p = Process.Start(psi)!;
    p.WaitForExit();
    if (check && p.ExitCode != 0) throw new Exception($"{file} exited with {p.ExitCode}");
    return p.ExitCode;
}

string Capture(string file, string args)
{
    var psi = new ProcessStartInfo(file, args) { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    using var p = Process.Start(psi)!;
    var output = p.StandardOutput.ReadToEnd();
    p.StandardError.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new Exception($"{file} {args} exited with {p.ExitCode}");
    return output;
}

bool HasCommand(string name) => Run("sh", $"-c \"command -v {name} >/dev/null 2>&1\"", check: false) == 0;
bool PkgInstalled(string pkg) => Run("sh", $"-c \"dpkg-query -W -f='${{Status}}' {pkg} 2>/dev/null | grep -q 'install ok installed'\"", check: false) == 0;

Task("Deps")
    .Description("Installs the native build and benchmark dependencies with apt-get when missing (root), else says how.")
    .Does(() =>
{
    var wanted = new[] { "gcc", "cmake", "make", "pkg-config", "liburing-dev", "libnuma-dev", "libclang1-14", "fio" };
    var missing = wanted.Where(p => !PkgInstalled(p)).ToList();
    if (missing.Count == 0) { Information("Native dependencies present."); return; }
    var install = $"apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y {string.Join(' ', missing)}";
    var isRoot = Capture("id", "-u").Trim() == "0";
    if (!isRoot)
        throw new Exception($"Missing packages: {string.Join(", ", missing)}. Install them with: sudo sh -c '{install}'");
    Run("sh", $"-c \"{install}\"");
});

Task("NativeBuild")
    .Description("Configures and builds libemushim.so and the C tests with CMake.")
    .Does(() =>
{
    Run("cmake", $"-S . -B artifacts/native -DCMAKE_BUILD_TYPE=Release");
    Run("cmake", $"--build artifacts/native -j {Environment.ProcessorCount}");
});

Task("Native")
    .Description("NativeBuild, then CTest.")
    .IsDependentOn("NativeBuild")
    .Does(() => Run("ctest", "--test-dir artifacts/native --output-on-failure"));

Task("Bindings")
    .Description("Regenerates the C# bindings and the layout dump from native/include/emu_shim.h with libclang.")
    .Does(() => Run("dotnet", "run --project build/Emu.BindGen -c Release"));

Task("Build")
    .Description("Builds Emu.sln and puts a runnable CLI (with the shim beside it) at artifacts/emu/emu.")
    .Does(() =>
{
    Run("dotnet", $"build Emu.sln -c {configuration} -nologo");
    Run("dotnet", $"publish src/Emu.Cli -c {configuration} --no-self-contained -o artifacts/emu -nologo");
    System.IO.File.Copy($"{nativeDir}/libemushim.so", $"{cliDir}/libemushim.so", overwrite: true);
    Information($"emu is at {cliDir}/emu");
});

Task("Default").IsDependentOn("Deps").IsDependentOn("Native").IsDependentOn("Build");

Task("Main")
    .Description("Builds everything, then runs Emu's main job: the deadlock repro in both modes on a default backing file.")
    .IsDependentOn("Default")
    .Does(() => Run($"{cliDir}/emu", "repro --mode both"));

Task("Test")
    .Description("Runs CTest and every NUnit project; the last line is 'Tests: N passed, N failed[, N skipped]'.")
    .IsDependentOn("Deps")
    .IsDependentOn("NativeBuild")
    .IsDependentOn("Build")
    .Does(() =>
{
    if (System.IO.Directory.Exists(testResults)) System.IO.Directory.Delete(testResults, recursive: true);
    System.IO.Directory.CreateDirectory(testResults);
    var ctestExit = Run("ctest", $"--test-dir artifacts/native --output-on-failure --output-junit {testResults}/ctest.xml", check: false);
    var dotnetExit = Run("dotnet", $"test Emu.sln -c {configuration} --no-build -nologo --logger trx --results-directory {testResults}", check: false);

    var (passed, failed, skipped) = (0, 0, 0);
    var junit = $"{testResults}/ctest.xml";
    if (System.IO.File.Exists(junit))
    {
        foreach (var tc in XDocument.Load(junit).Descendants("testcase"))
        {
            var status = (string?)tc.Attribute("status");
            if (status == "run") passed++;
            else if (status == "notrun" || status == "disabled") skipped++;
            else failed++;
        }
    }
    else failed++;
    var trxFiles = System.IO.Directory.GetFiles(testResults, "*.trx", SearchOption.AllDirectories);
    foreach (var trx in trxFiles)
    {
        XNamespace ns = "http://microsoft.com/schemas/VisualStudio/TeamTest/2010";
        foreach (var r in XDocument.Load(trx).Descendants(ns + "UnitTestResult"))
        {
            switch ((string?)r.Attribute("outcome"))
            {
                case "Passed": passed++; break;
                case "NotExecuted": case "Inconclusive": skipped++; break;
                default: failed++; break;
            }
        }
    }
    if (dotnetExit != 0 && trxFiles.Length == 0) failed++;
    testSummary = $"Tests: {passed} passed, {failed} failed" + (skipped > 0 ? $", {skipped} skipped" : "");
    if (failed > 0 || ctestExit != 0 || dotnetExit != 0)
        throw new Exception($"{failed} test(s) failed (ctest exit {ctestExit}, dotnet test exit {dotnetExit}).");
});

Task("Publish")
    .Description("Self-contained linux-x64 emu + libemushim.so in artifacts/emu-linux-x64.tar.gz.")
    .IsDependentOn("Deps")
    .IsDependentOn("NativeBuild")
    .Does(() =>
{
    var outDir = $"{root}/artifacts/publish/emu-linux-x64";
    if (System.IO.Directory.Exists(outDir)) System.IO.Directory.Delete(outDir, recursive: true);
    Run("dotnet", $"publish src/Emu.Cli -c {configuration} -r linux-x64 --self-contained -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=false -o {outDir} -nologo");
    System.IO.File.Copy($"{nativeDir}/libemushim.so", $"{outDir}/libemushim.so", overwrite: true);
    Run("tar", $"-C {root}/artifacts/publish -czf {root}/artifacts/emu-linux-x64.tar.gz emu-linux-x64");
    Information($"Wrote {root}/artifacts/emu-linux-x64.tar.gz");
});

// Side by side against fio on one O_DIRECT backing file, alternating emu and fio in each round so both see the
// same machine noise; the ratios are of medians.
Task("BenchBlock")
    .Description("emu blk bench vs fio on the same O_DIRECT file: 4K randread QD32 and 1M sequential write QD8.")
    .IsDependentOn("Default")
    .Does(() =>
{
    var rounds = Argument("rounds", 3);
    var runtime = Argument("runtime", 5);
    var file = Argument("bench-file", $"{root}/artifacts/bench/blk.img");
    var fileMiB = Argument("bench-size-mib", 1024);
    var fileSize = $"{fileMiB}M";
    System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
    // Written data, not fallocate's unwritten extents: ext4 answers reads of those with zeroes and no disk I/O.
    if (!System.IO.File.Exists(file) || new System.IO.FileInfo(file).Length != (long)fileMiB << 20)
        Run("dd", $"if=/dev/urandom of={file} bs=1M count={fileMiB} oflag=direct status=none");
    var workloads = new[]
    {
        (Name: "4K randread QD32", Rw: "randread", Bs: "4k", Depth: 32, Metric: "iops"),
        (Name: "1M seq write QD8", Rw: "write", Bs: "1M", Depth: 8, Metric: "bw"),
    };
    var lines = new List<string>();
    foreach (var w in workloads)
    {
        var raw = new List<double>();
        var blk = new List<double>();
        var fio = new List<double>();
        double EmuRun(string layer)
        {
            var e = System.Text.Json.JsonDocument.Parse(Capture($"{cliDir}/emu", $"blk bench --layer {layer} --filename {file} --size {fileSize} --rw {w.Rw} --bs {w.Bs} --iodepth {w.Depth} --runtime {runtime} --ioengine io_uring --json")).RootElement;
            return w.Metric == "iops" ? e.GetProperty("iops").GetDouble() : e.GetProperty("bwBytesPerSec").GetDouble();
        }
        for (int r = 0; r < rounds; r++)
        {
            blk.Add(EmuRun("blk"));
            var f = System.Text.Json.JsonDocument.Parse(Capture("fio", $"--name=bench --filename={file} --size={fileSize} --rw={w.Rw} --bs={w.Bs} --iodepth={w.Depth} --ioengine=io_uring --direct=1 --runtime={runtime} --time_based --numjobs=1 --output-format=json")).RootElement;
            var side = f.GetProperty("jobs")[0].GetProperty(w.Rw.Contains("read") ? "read" : "write");
            fio.Add(w.Metric == "iops" ? side.GetProperty("iops").GetDouble() : side.GetProperty("bw_bytes").GetDouble());
            raw.Add(EmuRun("raw"));
            Information($"{w.Name} round {r + 1}: emu blk-mq {Fmt(blk[^1], w.Metric)}  fio {Fmt(fio[^1], w.Metric)}  emu raw engine {Fmt(raw[^1], w.Metric)}");
        }
        double mb = Median(blk), mf = Median(fio), mr = Median(raw);
        lines.Add($"{w.Name,-18} fio {Fmt(mf, w.Metric),14}  emu blk-mq {Fmt(mb, w.Metric),14} ({mb / mf:F3}x fio)  emu raw engine {Fmt(mr, w.Metric),14} ({mr / mf:F3}x fio)");
    }
    var nul = System.Text.Json.JsonDocument.Parse(Capture($"{cliDir}/emu", $"blk bench --ioengine null --size {fileSize} --rw randread --bs 4k --iodepth 1 --runtime {runtime} --json")).RootElement;
    lines.Add($"null engine, QD1: {1e9 / nul.GetProperty("iops").GetDouble():F0} ns per I/O through the block layer (submit_bio to bi_end_io and back)");
    Information("");
    Information($"medians of {rounds} alternating rounds, {runtime}s each, on {file}:");
    foreach (var l in lines) Information(l);
});

// The user targets run `emu` with what the arguments say and judge its exit code by what the mode should do:
// an unpatched run is expected to deadlock (exit 1), a patched one to complete (exit 0).
void RunEmuExpecting(string args, params int[] expected)
{
    int code = Run($"{cliDir}/emu", args, check: false);
    if (!expected.Contains(code)) throw new Exception($"emu {args} exited {code}; expected {string.Join(" or ", expected)}");
}

string Opt(string name, string? value) => string.IsNullOrEmpty(value) ? "" : $" --{name} {value}";

int[] ExpectedFor(string mode) => mode switch { "unpatched" => [1], "patched" => [0], _ => [0] };

Task("Repro")
    .Description("emu repro: the commit's three-CPU interleaving; --mode=unpatched|patched|both (default both), --repeat=N, --trace=FILE.")
    .IsDependentOn("Default")
    .Does(() =>
{
    var mode = Argument("mode", "both");
    RunEmuExpecting($"repro --mode {mode}{Opt("repeat", Argument("repeat", ""))}{Opt("trace", Argument("trace", ""))}", ExpectedFor(mode));
});

Task("Stress")
    .Description("emu stress: fdm-stress until the first deadlock or --runtime; --mode (default unpatched), --runtime=S (default 60), --seed, --dump-on-hang=PATH, --trace=FILE.")
    .IsDependentOn("Default")
    .Does(() =>
{
    var mode = Argument("mode", "unpatched");
    var args = $"stress --mode {mode} --runtime {Argument("runtime", "60")}{Opt("seed", Argument("seed", ""))}" +
               $"{Opt("dump-on-hang", Argument("dump-on-hang", ""))}{Opt("trace", Argument("trace", ""))}";
    RunEmuExpecting(args, ExpectedFor(mode));
});

Task("Compare")
    .Description("emu compare: every built-in workload in both modes; --repeat=N (default 3), --runtime=S per stress run (default 5), --workloads=a,b, --job=FILE, --out=DIR (default artifacts/compare).")
    .IsDependentOn("Default")
    .Does(() =>
{
    var outDir = Argument("out", $"{root}/artifacts/compare");
    var args = $"compare --repeat {Argument("repeat", "3")} --runtime {Argument("runtime", "5")} --out {outDir} --force" +
               $"{Opt("workloads", Argument("workloads", ""))}{Opt("job", Argument("job", ""))}";
    RunEmuExpecting(args, 0);
    Information($"results: {outDir}/results.json and {outDir}/*.svg");
});

// The wq bench alternates Emu's workqueues and the thread pool inside one process; separate runs of it then
// give the spread the machine's noise adds, and the median of their ratios is the figure to quote.
Task("BenchWq")
    .Description("emu wq bench run --runs=N times (default 5): empty work items on Emu's unbound and bound workqueues vs the .NET thread pool; medians of the ratios.")
    .IsDependentOn("Default")
    .Does(() =>
{
    var runs = Argument("runs", 5);
    var unbound = new List<double>();
    var bound = new List<double>();
    for (int r = 0; r < runs; r++)
    {
        var e = System.Text.Json.JsonDocument.Parse(Capture($"{cliDir}/emu", "wq bench --json")).RootElement;
        unbound.Add(e.GetProperty("ratio").GetDouble());
        bound.Add(e.GetProperty("boundRatio").GetDouble());
        var alone = e.GetProperty("emuUnboundAloneNsPerItem");
        Information($"run {r + 1}: unbound {e.GetProperty("emuUnboundOpsPerSec").GetDouble():F0}/s, bound {e.GetProperty("emuBoundOpsPerSec").GetDouble():F0}/s, " +
                    $"thread pool {e.GetProperty("threadPoolOpsPerSec").GetDouble():F0}/s: ratios {unbound[^1]:F3} / {bound[^1]:F3}; " +
                    $"unbound alone: queue_work {alone.GetProperty("queueWork").GetDouble():F1} ns/item, workers {alone.GetProperty("workers").GetDouble():F1} ns/item");
    }
    Information($"median of {runs} runs: unbound workqueue {Median(unbound):F3}x the thread pool, bound {Median(bound):F3}x " +
                $"(unbound runs: {string.Join(", ", unbound.Select(v => v.ToString("F3", CultureInfo.InvariantCulture)))})");
});

Task("Bench")
    .Description("BenchBlock, BenchWq, then a quick compare (--repeat 1, 3 s runs) into artifacts/compare-quick.")
    .IsDependentOn("BenchBlock")
    .IsDependentOn("BenchWq")
    .Does(() => RunEmuExpecting($"compare --repeat 1 --runtime 3 --out {root}/artifacts/compare-quick --force", 0));

static double Median(List<double> values)
{
    var s = values.OrderBy(v => v).ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}

static string Fmt(double v, string metric) => metric == "iops" ? $"{v:F0} IOPS" : $"{v / (1 << 20):F1} MiB/s";

RunTarget(target);
