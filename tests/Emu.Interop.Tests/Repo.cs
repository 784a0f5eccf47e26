using Emu.BindGen;

namespace Emu.Interop.Tests;

/// <summary>Paths in the repository the tests run from, and scratch space on its (O_DIRECT-capable) filesystem.</summary>
internal static class Repo
{
    public static string Root { get; } = BindingGenerator.FindRepoRoot(AppContext.BaseDirectory);

    public static string NativeBuildDir => Path.Combine(Root, "artifacts", "native");

    /// <summary>A new empty directory under artifacts/tests/Emu.Interop.Tests; the caller deletes it.</summary>
    public static string CreateScratchDirectory()
    {
        string dir = Path.Combine(Root, "artifacts", "tests", "Emu.Interop.Tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
