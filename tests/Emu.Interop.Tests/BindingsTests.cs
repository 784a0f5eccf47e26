using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Emu.BindGen;

namespace Emu.Interop.Tests;

/// <summary>The checked-in bindings are what build/Emu.BindGen makes of emu_shim.h, and lay out as gcc does.</summary>
public sealed class BindingsTests
{
    [Test]
    public void CheckedInBindings_MatchGeneratorOutput()
    {
        IReadOnlyDictionary<string, string> generated =
            BindingGenerator.Generate(Path.Combine(Repo.Root, BindingGenerator.HeaderPath));

        Assert.That(generated.Keys, Is.EquivalentTo(new[] { BindingGenerator.BindingsPath, BindingGenerator.LayoutDumpPath }));
        foreach ((string relativePath, string content) in generated)
        {
            string path = Path.Combine(Repo.Root, relativePath);
            Assert.That(File.Exists(path), $"{relativePath} is missing: run `dotnet run --project build/Emu.BindGen`");
            string? difference = FirstDifference(content, File.ReadAllText(path));
            Assert.That(difference, Is.Null, $"{relativePath} is stale at {difference}: run `dotnet run --project build/Emu.BindGen`");
        }
    }

    [Test]
    public void SharedStructs_MatchCCompilerLayout()
    {
        string dump = Path.Combine(Repo.NativeBuildDir, "layout_dump");
        Assert.That(File.Exists(dump), $"{dump} is missing: build it with: dotnet cake cake.cs --target=Native");

        var cSizes = new Dictionary<string, long>();
        var cOffsets = new Dictionary<string, Dictionary<string, long>>();
        foreach (string line in RunLayoutDump(dump))
        {
            string[] parts = line.Split(' ');
            Assert.That(parts, Has.Length.EqualTo(3), $"layout_dump line `{line}`");
            if (parts[0] == "struct")
            {
                cSizes.Add(parts[1], long.Parse(parts[2]));
                cOffsets.Add(parts[1], []);
            }
            else
            {
                Assert.That(parts[0], Is.EqualTo("field"), $"layout_dump line `{line}`");
                string[] names = parts[1].Split('.');
                cOffsets[names[0]].Add(names[1], long.Parse(parts[2]));
            }
        }

        Dictionary<string, Type> csStructs = typeof(emu_cpuset).Assembly.GetTypes()
            .Where(t => t.IsValueType && !t.IsEnum && t.Namespace == "Emu.Interop" && t.Name.StartsWith("emu_", StringComparison.Ordinal))
            .ToDictionary(t => t.Name);
        Assert.That(csStructs.Keys, Is.EquivalentTo(cSizes.Keys), "structs in C# vs structs in layout_dump");

        using (Assert.EnterMultipleScope())
        {
            foreach ((string name, Type type) in csStructs)
            {
                Assert.That(UnsafeSizeOf(type), Is.EqualTo(cSizes[name]), $"sizeof({name})");
                Assert.That(Marshal.SizeOf(type), Is.EqualTo(cSizes[name]), $"Marshal.SizeOf({name})");
                string[] csFields = type.GetFields(BindingFlags.Public | BindingFlags.Instance).Select(f => f.Name).ToArray();
                Assert.That(csFields, Is.EquivalentTo(cOffsets[name].Keys), $"fields of {name}");
                foreach ((string field, long offset) in cOffsets[name])
                {
                    if (csFields.Contains(field))
                        Assert.That((long)Marshal.OffsetOf(type, field), Is.EqualTo(offset), $"offsetof({name}, {field})");
                }
            }
        }
    }

    [Test]
    public void CheckedInCopy_WhenOneLineDiffers_IsReportedStale()
    {
        string root = Repo.CreateScratchDirectory();
        try
        {
            var generated = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                ["a/one.g.cs"] = "same\n",
                ["b/two.g.c"] = "line 1\nline 2\n",
            };
            foreach ((string relativePath, string content) in generated)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, relativePath))!);
                File.WriteAllText(Path.Combine(root, relativePath), content);
            }
            Assert.That(BindingGenerator.FindStale(root, generated), Is.Null);

            File.WriteAllText(Path.Combine(root, "b/two.g.c"), "line 1\nline 2 edited by hand\n");
            Assert.That(BindingGenerator.FindStale(root, generated), Is.EqualTo("b/two.g.c"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static IEnumerable<string> RunLayoutDump(string dump)
    {
        var start = new ProcessStartInfo(dump) { RedirectStandardOutput = true, UseShellExecute = false };
        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, "layout_dump exit code");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static long UnsafeSizeOf(Type type) =>
        (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!;

    /// <summary>"line N: generated `x`, checked in `y`" for the first line that differs; null when equal.</summary>
    private static string? FirstDifference(string generated, string checkedIn)
    {
        string[] expected = generated.Split('\n');
        string[] actual = checkedIn.Split('\n');
        for (int i = 0; i < Math.Max(expected.Length, actual.Length); i++)
        {
            string? e = i < expected.Length ? expected[i] : null;
            string? a = i < actual.Length ? actual[i] : null;
            if (e != a)
                return $"line {i + 1}: generated `{e ?? "<end of file>"}`, checked in `{a ?? "<end of file>"}`";
        }
        return null;
    }
}
