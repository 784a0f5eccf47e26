using System.Text.Json;

namespace Emu.Cli.Tests;

/// <summary>
/// `emu repro`: unpatched (v4.4 lock_extent_direct) deadlocks with the seed's cycle and call traces, patched
/// (v4.6, ade770294df2) completes with verified data. `--mode both` runs each mode in a child emu process,
/// so the deadlocked tasks of the unpatched run never share a process with anything else.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ReproCommandTests
{
    private static readonly Dictionary<string, string[]> SeedFrames = new()
    {
        ["dio-reader"] =
        [
            "lock_page", "extent_write_cache_pages", "extent_writepages", "btrfs_writepages", "do_writepages",
            "__filemap_fdatawrite_range", "filemap_fdatawrite_range", "btrfs_start_ordered_extent",
            "btrfs_get_blocks_direct", "do_blockdev_direct_IO", "__blockdev_direct_IO", "btrfs_direct_IO",
            "generic_file_read_iter", "__vfs_read", "vfs_read",
        ],
        ["buffered-writer"] = ["lock_extent_bits", "lock_and_cleanup_extent_if_need", "__btrfs_buffered_write", "btrfs_file_write_iter", "__vfs_write", "vfs_write"],
        ["snapshot"] = ["wait_for_completion", "btrfs_wait_ordered_extents", "btrfs_mksubvol", "btrfs_ioctl_snap_create_transid"],
        ["sync"] = ["mutex_lock_nested", "btrfs_wait_ordered_extents", "btrfs_wait_ordered_roots", "btrfs_sync_fs", "sys_sync"],
        ["flush_delalloc-worker"] = ["lock_page", "extent_write_cache_pages", "btrfs_start_ordered_extent", "btrfs_run_ordered_extent_work", "process_one_work"],
        ["writeback-worker"] = ["lock_page", "extent_write_cache_pages", "__writeback_single_inode", "writeback_sb_inodes", "wb_writeback", "wb_workfn"],
    };

    private static JsonElement RunBoth(out CliHarness.Result result)
    {
        result = CliHarness.Run("repro", "--mode", "both", "--engine", "mem", "--json");
        using var doc = JsonDocument.Parse(result.Stdout);
        return doc.RootElement.Clone();
    }

    private static bool InOrder(string[] expected, List<string> frames)
    {
        int at = 0;
        foreach (var want in expected)
        {
            int i = frames.IndexOf(want, at);
            if (i < 0) return false;
            at = i + 1;
        }
        return true;
    }

    [Test]
    public void Both_UnpatchedDeadlocksWithTheSeedsCycleAndTraces_PatchedCompletes_ExitsZero()
    {
        var root = RunBoth(out var r);

        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(root.GetProperty("reproduced").GetBoolean(), Is.True);
        var unpatched = root.GetProperty("unpatched").GetProperty("results")[0];
        var patched = root.GetProperty("patched").GetProperty("results")[0];

        Assert.That(unpatched.GetProperty("deadlocked").GetBoolean(), Is.True);
        var cycle = unpatched.GetProperty("cycle").EnumerateArray().ToList();
        Assert.That(cycle, Has.Count.EqualTo(2));
        var readerWait = cycle.Single(e => e.GetProperty("task").GetProperty("role").GetString() == "dio-reader");
        var writerWait = cycle.Single(e => e.GetProperty("task").GetProperty("role").GetString() == "buffered-writer");
        Assert.That(readerWait.GetProperty("resource").GetString(), Is.EqualTo("page 2 of inode 257"));
        Assert.That(readerWait.GetProperty("holder").GetProperty("role").GetString(), Is.EqualTo("buffered-writer"));
        Assert.That(writerWait.GetProperty("resource").GetString(), Is.EqualTo("extent range [0, 4095] of inode 257"));
        Assert.That(writerWait.GetProperty("holder").GetProperty("role").GetString(), Is.EqualTo("dio-reader"));
        Assert.That(unpatched.GetProperty("detectionLatencyMs").GetInt64(), Is.LessThan(100), "reported as the cycle closes, not by a timeout");

        var hung = unpatched.GetProperty("hungTasks").EnumerateArray().ToList();
        Assert.That(hung.Select(h => h.GetProperty("task").GetProperty("role").GetString()), Is.EquivalentTo(SeedFrames.Keys));
        foreach (var h in hung)
        {
            string role = h.GetProperty("task").GetProperty("role").GetString()!;
            var frames = h.GetProperty("frames").EnumerateArray().Select(f => f.GetString()!).ToList();
            Assert.That(InOrder(SeedFrames[role], frames), Is.True, $"{role}: {string.Join(" <- ", frames)}");
            Assert.That(h.GetProperty("task").GetProperty("comm").GetString(), role.EndsWith("worker") ? Does.StartWith("kworker/u") : Is.EqualTo("fdm-stress"));
        }
        Assert.That(hung.Single(h => h.GetProperty("task").GetProperty("role").GetString() == "flush_delalloc-worker").GetProperty("workqueue").GetString(),
            Does.StartWith("btrfs-flush_delalloc btrfs_flush_delalloc_helper"));
        Assert.That(hung.Single(h => h.GetProperty("task").GetProperty("role").GetString() == "writeback-worker").GetProperty("workqueue").GetString(),
            Does.StartWith("writeback wb_workfn"));

        Assert.That(patched.GetProperty("completed").GetBoolean(), Is.True);
        Assert.That(patched.GetProperty("deadlocked").GetBoolean(), Is.False);
        Assert.That(patched.GetProperty("readBytes").GetInt64(), Is.EqualTo(12288));
        Assert.That(patched.GetProperty("mismatches").GetArrayLength(), Is.Zero);
    }

    [Test]
    public void BadMode_IsAUsageError()
    {
        var r = CliHarness.Run("repro", "--mode", "sideways");

        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("--mode 'sideways'"));
    }

    [Test]
    public void MemEngineWithABackingFile_IsAUsageError()
    {
        var r = CliHarness.Run("repro", "--engine", "mem", "--backing", "/nonexistent/x.img");

        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
    }

    [Test]
    public void BackingWithAnExt4Signature_IsRefusedWithExit2_AndLeftUntouched()
    {
        string path = Path.Combine(CliHarness.ScratchDir(nameof(ReproCommandTests)), "ext4.img");
        var data = new byte[8 << 20];
        data[1080] = 0x53;
        data[1081] = 0xEF;
        File.WriteAllBytes(path, data);

        var r = CliHarness.Run("repro", "--mode", "patched", "--engine", "psync", "--backing", path);

        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
        Assert.That(r.StderrLines, Has.Length.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("ext2/ext3/ext4").And.Contain("--force"));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(data));
    }
}
