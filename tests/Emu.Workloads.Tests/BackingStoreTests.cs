using System.Buffers.Binary;
using System.Security.Cryptography;
using Emu.Btrfs;
using Emu.Workloads.Backing;
using Emu.Workloads.Stress;

namespace Emu.Workloads.Tests;

/// <summary>
/// The backing-store safety checks: Emu formats only what is empty or its own, refuses everything else without
/// --force (writing nothing), and refuses a store too small for the run before it starts.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class BackingStoreTests
{
    private const long Size = 4L << 20;
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Scratch.Dir(nameof(BackingStoreTests));
        foreach (string f in Directory.GetFiles(_dir))
        {
            File.Delete(f);
        }
    }

    private string FileWith(string name, Action<byte[]> fill)
    {
        byte[] data = new byte[Size];
        fill(data);
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, data);
        return path;
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private static BackingOptions On(string path, bool force = false) =>
        new() { Engine = BackingEngine.Psync, Path = path, Force = force, RequiredBytes = Size };

    [Test]
    public void Ext4Signature_IsRefusedWithoutForce_AndNothingIsWritten()
    {
        string path = FileWith("ext4.img", d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(1080), 0xEF53));
        string before = Hash(path);

        var e = Assert.Throws<WorkloadUsageException>(() => BackingStore.Open(On(path)));

        Assert.That(e!.Message, Does.Contain("ext2/ext3/ext4").And.Contain("--force"));
        Assert.That(e.Message, Does.Not.Contain('\n'));
        Assert.That(Hash(path), Is.EqualTo(before));
    }

    [Test]
    public void Ext4Signature_WithForce_IsAccepted()
    {
        string path = FileWith("ext4-forced.img", d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(1080), 0xEF53));

        using BackingStore store = BackingStore.Open(On(path, force: true));

        Assert.That(store.Path, Is.EqualTo(path));
    }

    [Test]
    public void EmuBackingFile_IsReformattedWithoutForce()
    {
        string path = Path.Combine(_dir, "emu.img");
        Machine first = Machine.Boot(BackingStore.Open(On(path)), new MachineOptions { Mode = BtrfsMode.Patched });
        first.Shutdown();
        byte[] head = new byte[DiskSignatures.ProbeBytes];
        int got = Emu.Interop.BlockDevice.Peek(path, 0, head);
        Assert.That(DiskSignatures.Probe(head.AsSpan(0, got), out _), Is.EqualTo(DiskContent.EmuFilesystem));

        Machine second = Machine.Boot(BackingStore.Open(On(path)), new MachineOptions { Mode = BtrfsMode.Patched });

        Assert.That(second.Fs.FsInfo.Generation, Is.EqualTo(0), "a reformatted filesystem starts at generation 0");
        second.Shutdown();
    }

    [Test]
    public void UnknownData_IsRefusedWithoutForce()
    {
        string path = FileWith("data.img", d => d[5000] = 1);

        var e = Assert.Throws<WorkloadUsageException>(() => BackingStore.Open(On(path)));

        Assert.That(e!.Message, Does.Contain("data Emu did not write").And.Contain("byte 5000"));
    }

    [Test]
    public void AllZeroFile_IsAccepted()
    {
        string path = FileWith("zero.img", _ => { });

        using BackingStore store = BackingStore.Open(On(path));

        Assert.That(store.Created, Is.False);
    }

    [Test]
    public void MissingFile_IsCreatedWithTheSizeTheRunNeeds()
    {
        string path = Path.Combine(_dir, "new.img");

        using (BackingStore store = BackingStore.Open(On(path)))
        {
            Assert.That(store.Created, Is.True);
        }

        Assert.That(new FileInfo(path).Length, Is.EqualTo(Size));
    }

    [Test]
    public void TooSmallFile_IsRefusedBeforeTheRunStarts_AndLeftAsItWas()
    {
        string path = Path.Combine(_dir, "small.img");
        File.WriteAllBytes(path, new byte[1 << 20]);
        var options = new StressOptions
        {
            Mode = BtrfsMode.Patched,
            Files = 4,
            FileSize = 1 << 20,
            Runtime = TimeSpan.FromSeconds(1),
            Backing = new BackingOptions { Engine = BackingEngine.Psync, Path = path },
        };

        var e = Assert.Throws<WorkloadUsageException>(() => StressWorkload.Run(options));

        Assert.That(e!.Message, Does.Contain("too small").And.Contain("1MiB"));
        Assert.That(new FileInfo(path).Length, Is.EqualTo(1 << 20));
        Assert.That(File.ReadAllBytes(path), Has.All.EqualTo((byte)0));
    }

    [Test]
    public void MemEngine_WithABackingPath_IsRefused()
    {
        var e = Assert.Throws<WorkloadUsageException>(() =>
            BackingStore.Open(new BackingOptions { Engine = BackingEngine.Mem, Path = Path.Combine(_dir, "x.img") }));

        Assert.That(e!.Message, Does.Contain("--engine mem"));
        Assert.That(File.Exists(Path.Combine(_dir, "x.img")), Is.False);
    }

    [Test]
    public void Directory_IsRefused()
    {
        var e = Assert.Throws<WorkloadUsageException>(() => BackingStore.Open(On(_dir)));

        Assert.That(e!.Message, Does.Contain("is a directory"));
    }

    [Test]
    public void DefaultDataDir_PrefersEmuDataDirThenXdgDataHome()
    {
        string? oldEmu = Environment.GetEnvironmentVariable("EMU_DATA_DIR");
        string? oldXdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        try
        {
            Environment.SetEnvironmentVariable("EMU_DATA_DIR", "/srv/emu-data");
            Environment.SetEnvironmentVariable("XDG_DATA_HOME", "/srv/xdg");
            Assert.That(BackingStore.DefaultDataDir(), Is.EqualTo("/srv/emu-data"));
            Environment.SetEnvironmentVariable("EMU_DATA_DIR", null);
            Assert.That(BackingStore.DefaultDataDir(), Is.EqualTo("/srv/xdg/emu"));
            Environment.SetEnvironmentVariable("XDG_DATA_HOME", null);
            Assert.That(BackingStore.DefaultDataDir(), Does.EndWith("/.local/share/emu"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("EMU_DATA_DIR", oldEmu);
            Environment.SetEnvironmentVariable("XDG_DATA_HOME", oldXdg);
        }
    }
}

/// <summary>What the first blocks of a device say (blkid-style probes).</summary>
[TestFixture]
public sealed class DiskSignaturesTests
{
    private static DiskContent Probe(Action<byte[]> fill, out string what)
    {
        byte[] head = new byte[DiskSignatures.ProbeBytes];
        fill(head);
        return DiskSignatures.Probe(head, out what);
    }

    [TestCase("xfs", 0, "XFSB", "XFS")]
    [TestCase("btrfs", 65600, "_BHRfS_M", "btrfs")]
    [TestCase("swap", 4086, "SWAPSPACE2", "swap")]
    [TestCase("gpt", 512, "EFI PART", "GPT")]
    public void ForeignSignature_IsRecognisedAndNamed(string kind, int offset, string magic, string named)
    {
        DiskContent content = Probe(d => System.Text.Encoding.ASCII.GetBytes(magic).CopyTo(d, offset), out string what);

        Assert.That(content, Is.EqualTo(DiskContent.ForeignSignature), kind);
        Assert.That(what, Does.Contain(named));
    }

    [Test]
    public void Luks_IsRecognised()
    {
        Assert.That(Probe(d => new byte[] { (byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xBA, 0xBE }.CopyTo(d, 0), out string what),
            Is.EqualTo(DiskContent.ForeignSignature));
        Assert.That(what, Does.Contain("LUKS"));
    }

    [Test]
    public void MbrSignature_CountsOnlyWithAPartitionEntry()
    {
        static void Sig(byte[] d)
        {
            d[510] = 0x55;
            d[511] = 0xAA;
        }

        Assert.That(Probe(d =>
        {
            Sig(d);
            d[446 + 4] = 0x83;
        }, out string what), Is.EqualTo(DiskContent.ForeignSignature));
        Assert.That(what, Does.Contain("MBR"));
        Assert.That(Probe(Sig, out _), Is.EqualTo(DiskContent.UnknownData), "a bare 0x55AA is data, not a partition table");
    }

    [Test]
    public void EmuSuperblockMagic_IsEmus()
    {
        Assert.That(Probe(d => DiskIo.EmuMagic.CopyTo(d.AsSpan(0x40)), out _), Is.EqualTo(DiskContent.EmuFilesystem));
    }

    [Test]
    public void AllZero_IsEmpty()
    {
        Assert.That(Probe(_ => { }, out _), Is.EqualTo(DiskContent.Empty));
    }
}

/// <summary>/proc/self/mountinfo parsing.</summary>
[TestFixture]
public sealed class MountTableTests
{
    private const string Sample =
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
        "30 22 0:25 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw\n" +
        "31 22 8:17 / /mnt/my\\040data rw - xfs /dev/sdb1 rw\n";

    [Test]
    public void MountOf_FindsTheLongestMountPoint()
    {
        MountTable t = MountTable.Parse(Sample);

        Assert.That(t.MountOf("/tmp/emu/backing.img")!.FsType, Is.EqualTo("tmpfs"));
        Assert.That(t.MountOf("/home/x")!.FsType, Is.EqualTo("ext4"));
        Assert.That(t.MountOf("/mnt/my data/f")!.FsType, Is.EqualTo("xfs"));
    }

    [Test]
    public void IsBlockDeviceMounted_MatchesTheMountSource()
    {
        MountTable t = MountTable.Parse(Sample);

        Assert.That(t.IsBlockDeviceMounted("/dev/sdb1", out string at), Is.True);
        Assert.That(at, Is.EqualTo("/mnt/my data"));
        Assert.That(t.IsBlockDeviceMounted("/dev/sdc1", out _), Is.False);
    }
}
