namespace Emu.Block.Tests;

/// <summary>Scratch space on the repository's filesystem (artifacts/tests/Emu.Block.Tests), where O_DIRECT works.</summary>
internal static class Scratch
{
    public static string Root { get; } = FindRepoRoot(AppContext.BaseDirectory);

    /// <summary>A new empty directory; the caller deletes it.</summary>
    public static string CreateDirectory()
    {
        string dir = Path.Combine(Root, "artifacts", "tests", "Emu.Block.Tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRepoRoot(string start)
    {
        for (DirectoryInfo? dir = new(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Emu.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Emu.sln above {start}");
    }
}
