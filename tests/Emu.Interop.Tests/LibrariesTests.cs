namespace Emu.Interop.Tests;

/// <summary>Where the resolver looks for libemushim.so, and what it says when it is nowhere.</summary>
public sealed class LibrariesTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory()
    {
        // Outside the repository, so the walk up to Emu.sln finds nothing unless a test builds a fake repo.
        _dir = Path.Combine(Path.GetTempPath(), "emu-interop-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void ShimNotFound_Message_IsOneLineNamingTheNativeTarget()
    {
        string message = new ShimNotFoundException().Message;

        Assert.That(message, Is.EqualTo(
            "libemushim.so not found next to emu or in artifacts/native; build it with: dotnet cake cake.cs --target=Native"));
        Assert.That(message, Does.Not.Contain('\n'));
    }

    [Test]
    public void FindShim_WhenNowhere_ReturnsNull()
    {
        Assert.That(Libraries.FindShim(_dir, null), Is.Null);
        Assert.That(Libraries.FindShim(_dir, Path.Combine(_dir, "missing", "libemushim.so")), Is.Null);
    }

    [Test]
    public void FindShim_PrefersTheLibraryBesideTheAssembly()
    {
        string repo = FakeRepoWithBuiltShim();
        string bin = Directory.CreateDirectory(Path.Combine(repo, "src", "bin")).FullName;
        string beside = Touch(Path.Combine(bin, "libemushim.so"));

        Assert.That(Libraries.FindShim(bin, null), Is.EqualTo(beside));
    }

    [Test]
    public void FindShim_FromBelowTheRepositoryRoot_FindsArtifactsNative()
    {
        string repo = FakeRepoWithBuiltShim();
        string bin = Directory.CreateDirectory(Path.Combine(repo, "tests", "X.Tests", "bin", "Debug")).FullName;

        Assert.That(Libraries.FindShim(bin, Path.Combine(_dir, "elsewhere.so")),
            Is.EqualTo(Path.Combine(repo, "artifacts", "native", "libemushim.so")));
    }

    [Test]
    public void FindShim_WhenNotBuilt_FallsBackToShimPathFileOrDirectory()
    {
        string installed = Directory.CreateDirectory(Path.Combine(_dir, "lib")).FullName;
        string file = Touch(Path.Combine(installed, "libemushim.so"));

        Assert.That(Libraries.FindShim(_dir, file), Is.EqualTo(file));
        Assert.That(Libraries.FindShim(_dir, installed), Is.EqualTo(file));
    }

    private string FakeRepoWithBuiltShim()
    {
        string repo = Directory.CreateDirectory(Path.Combine(_dir, "repo")).FullName;
        Touch(Path.Combine(repo, "Emu.sln"));
        Directory.CreateDirectory(Path.Combine(repo, "artifacts", "native"));
        Touch(Path.Combine(repo, "artifacts", "native", "libemushim.so"));
        return repo;
    }

    private static string Touch(string path)
    {
        File.WriteAllBytes(path, []);
        return path;
    }
}
