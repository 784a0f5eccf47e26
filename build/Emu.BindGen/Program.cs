// dotnet run --project build/Emu.BindGen -- [--check]
// Regenerates the files derived from native/include/emu_shim.h, or with --check only verifies that the
// checked-in copies are current. Exit codes: 0 done/up to date, 1 a checked-in file is stale, 2 cannot run.
using Emu.BindGen;

bool check = args is ["--check"];
if (!check && args.Length > 0)
{
    Console.Error.WriteLine("usage: dotnet run --project build/Emu.BindGen -- [--check]");
    return 2;
}

try
{
    string root = BindingGenerator.FindRepoRoot(Directory.GetCurrentDirectory());
    IReadOnlyDictionary<string, string> generated = BindingGenerator.Generate(Path.Combine(root, BindingGenerator.HeaderPath));
    if (check)
    {
        string? stale = BindingGenerator.FindStale(root, generated);
        if (stale is not null)
        {
            Console.Error.WriteLine($"{stale} is stale: run `dotnet run --project build/Emu.BindGen` and commit the result");
            return 1;
        }
        Console.WriteLine($"{generated.Count} generated files match {BindingGenerator.HeaderPath}");
        return 0;
    }

    foreach ((string relativePath, string content) in generated)
    {
        string path = Path.Combine(root, relativePath);
        if (File.Exists(path) && File.ReadAllText(path) == content)
        {
            Console.WriteLine($"unchanged {relativePath}");
            continue;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        Console.WriteLine($"wrote {relativePath}");
    }
    return 0;
}
catch (Exception e) when (e is BindGenException or LibClangNotFoundException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
