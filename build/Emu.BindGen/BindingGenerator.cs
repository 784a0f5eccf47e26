namespace Emu.BindGen;

/// <summary>
/// Generates everything derived from emu_shim.h: the C# bindings and the C layout dump, from one libclang parse
/// so both always describe the same structs.
/// </summary>
public static class BindingGenerator
{
    /// <summary>The header, relative to the repository root.</summary>
    public const string HeaderPath = "native/include/emu_shim.h";

    /// <summary>The C# bindings, relative to the repository root.</summary>
    public const string BindingsPath = "interop/Emu.Interop/Generated/EmuShim.g.cs";

    /// <summary>The layout-dump program, relative to the repository root.</summary>
    public const string LayoutDumpPath = "native/tests/layout_dump.g.c";

    /// <summary>Parses the header; throws <see cref="BindGenException"/> on a diagnostic or an unmappable declaration.</summary>
    public static HeaderModel Parse(string headerPath) => HeaderParser.Parse(headerPath);

    /// <summary>
    /// Every generated file, keyed by its path relative to the repository root ('/'-separated), in ordinal order.
    /// The content is deterministic: same header, same bytes.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Generate(string headerPath)
    {
        HeaderModel model = Parse(headerPath);
        return new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [BindingsPath] = CSharpEmitter.Emit(model),
            [LayoutDumpPath] = LayoutDumpEmitter.Emit(model),
        };
    }

    /// <summary>The first generated file whose checked-in copy under <paramref name="repoRoot"/> differs (or is missing); null when all match.</summary>
    public static string? FindStale(string repoRoot, IReadOnlyDictionary<string, string> generated)
    {
        foreach ((string relativePath, string content) in generated)
        {
            string path = Path.Combine(repoRoot, relativePath);
            if (!File.Exists(path) || File.ReadAllText(path) != content)
                return relativePath;
        }
        return null;
    }

    /// <summary>The nearest directory at or above <paramref name="startDirectory"/> that holds Emu.sln.</summary>
    public static string FindRepoRoot(string startDirectory)
    {
        for (DirectoryInfo? dir = new(Path.GetFullPath(startDirectory)); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Emu.sln")))
                return dir.FullName;
        }
        throw new BindGenException($"no Emu.sln at or above {startDirectory}: run from inside the repository");
    }
}
