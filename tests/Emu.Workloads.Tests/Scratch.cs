namespace Emu.Workloads.Tests;

/// <summary>Scratch files on the repository's disk (O_DIRECT works there, unlike on tmpfs).</summary>
internal static class Scratch
{
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "Emu.sln")))
                {
                    return d.FullName;
                }
            }

            throw new InvalidOperationException("Emu.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Dir(string name)
    {
        string dir = Path.Combine(RepoRoot, "artifacts", "test-scratch", "workloads", name);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
