namespace Emu.Interop.Tests;

/// <summary>emu_blockdev_open's contract: O_DIRECT, and an error leaves the filesystem as it was.</summary>
public sealed class BlockDeviceTests
{
    private const ulong MiB = 1 << 20;

    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Repo.CreateScratchDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Open_Create_MakesAFileOfTheSizeAndDescribesItsDioAlignment()
    {
        string path = Path.Combine(_dir, "disk.img");

        using BlockDevice dev = BlockDevice.Open(path, BlockDeviceOpenFlags.Create, MiB);

        Assert.That(dev.Created, Is.True);
        Assert.That(dev.IsBlockDevice, Is.False);
        Assert.That(dev.SizeBytes, Is.EqualTo(MiB));
        Assert.That(new FileInfo(path).Length, Is.EqualTo((long)MiB));
        Assert.That(dev.DioOffsetAlign, Is.GreaterThan(0u));
        Assert.That(dev.DioMemAlign, Is.GreaterThan(0u));
        Assert.That(dev.LogicalBlockSize, Is.EqualTo(dev.DioOffsetAlign), "a file's logical block is its DIO offset alignment");
        Assert.That(dev.Handle.DangerousGetFd(), Is.GreaterThanOrEqualTo(0));
    }

    [Test]
    public void Open_ExistingFileWithCreate_OpensItWithoutCreating()
    {
        string path = Path.Combine(_dir, "disk.img");
        File.WriteAllBytes(path, new byte[8192]);

        using BlockDevice dev = BlockDevice.Open(path, BlockDeviceOpenFlags.Create, 0);

        Assert.That(dev.Created, Is.False);
        Assert.That(dev.SizeBytes, Is.EqualTo(8192UL));
    }

    [Test]
    public void Open_Directory_ThrowsEisdir()
    {
        var e = Assert.Throws<ShimException>(() => BlockDevice.Open(_dir, BlockDeviceOpenFlags.None, 0));

        Assert.That(e!.Errno, Is.EqualTo(Errno.EISDIR));
        Assert.That(e.Message, Does.Contain(_dir).And.Not.Contain('\n'));
    }

    [Test]
    public void Open_MissingPathWithoutCreate_ThrowsEnoentAndCreatesNothing()
    {
        string path = Path.Combine(_dir, "missing.img");

        var e = Assert.Throws<ShimException>(() => BlockDevice.Open(path, BlockDeviceOpenFlags.None, MiB));

        Assert.That(e!.Errno, Is.EqualTo(Errno.ENOENT));
        Assert.That(File.Exists(path), Is.False);
    }

    [Test]
    public void Open_ExistingFileTooSmallWithoutGrow_ThrowsEfbigAndLeavesTheFileUntouched()
    {
        string path = Path.Combine(_dir, "small.img");
        byte[] content = Pattern(4096, seed: 7);
        File.WriteAllBytes(path, content);
        DateTime written = File.GetLastWriteTimeUtc(path);

        var e = Assert.Throws<ShimException>(() => BlockDevice.Open(path, BlockDeviceOpenFlags.Create, MiB));

        Assert.That(e!.Errno, Is.EqualTo(Errno.EFBIG));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(content));
        Assert.That(File.GetLastWriteTimeUtc(path), Is.EqualTo(written));
    }

    [Test]
    public void Open_ExistingFileTooSmallWithGrow_ExtendsItKeepingItsData()
    {
        string path = Path.Combine(_dir, "small.img");
        byte[] content = Pattern(4096, seed: 9);
        File.WriteAllBytes(path, content);

        using (BlockDevice dev = BlockDevice.Open(path, BlockDeviceOpenFlags.Grow, MiB))
        {
            Assert.That(dev.SizeBytes, Is.EqualTo(MiB));
            Assert.That(dev.Created, Is.False);
        }

        Assert.That(new FileInfo(path).Length, Is.EqualTo((long)MiB));
        Assert.That(File.ReadAllBytes(path)[..4096], Is.EqualTo(content));
    }

    [Test]
    public void Open_OnTmpfs_IsRefusedOrReportedAsMemoryBacked()
    {
        // tmpfs refuses O_DIRECT before Linux 6.6 (EINVAL, and the file this open made is removed again) and
        // accepts it since; then fs_magic says it is RAM, which callers refuse as a backing store.
        const string shm = "/dev/shm";
        Assume.That(Directory.Exists(shm) && new DriveInfo(shm).DriveFormat == "tmpfs", Is.True, $"{shm} is not tmpfs here");
        string path = Path.Combine(shm, $"emu-interop-tests-{Guid.NewGuid():N}.img");
        try
        {
            try
            {
                using var device = BlockDevice.Open(path, BlockDeviceOpenFlags.Create, MiB);
                Assert.That(device.IsMemoryBacked, Is.True);
                Assert.That(device.Created, Is.True);
            }
            catch (ShimException e)
            {
                Assert.That(e.Errno, Is.EqualTo(Errno.EINVAL));
                Assert.That(File.Exists(path), Is.False, "the file this open created is removed again");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void Open_OnExt4_IsNotMemoryBacked()
    {
        string path = Path.Combine(_dir, "disk.img");
        using var device = BlockDevice.Open(path, BlockDeviceOpenFlags.Create, MiB);
        Assert.That(device.IsMemoryBacked, Is.False);
        Assert.That(device.FsMagic, Is.Not.Zero);
    }

    [Test]
    public void Peek_ReadsThroughThePageCacheAndStopsAtEndOfFile()
    {
        string path = Path.Combine(_dir, "peek.img");
        byte[] content = Pattern(100, seed: 3);
        File.WriteAllBytes(path, content);
        var buffer = new byte[20];

        int got = BlockDevice.Peek(path, 90, buffer);

        Assert.That(got, Is.EqualTo(10));
        Assert.That(buffer[..10], Is.EqualTo(content[90..]));
        Assert.That(buffer[10..], Is.All.Zero);
    }

    [Test]
    public void Peek_MissingFile_ThrowsEnoent()
    {
        var e = Assert.Throws<ShimException>(() => BlockDevice.Peek(Path.Combine(_dir, "missing"), 0, new byte[16]));

        Assert.That(e!.Errno, Is.EqualTo(Errno.ENOENT));
    }

    internal static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
