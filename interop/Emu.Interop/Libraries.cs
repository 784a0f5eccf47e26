// Where libemushim.so comes from. The shim is built by CMake into artifacts/native, not by MSBuild, so the
// default probing (next to the assembly, then the loader's paths) misses it during development; this resolver
// adds the build directory and EMU_SHIM_PATH, and fails with one line naming the build target.
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu.Interop;

/// <summary>Names of the native libraries the bindings load.</summary>
public static class Libraries
{
    /// <summary>The shim built from native/ (libemushim.so).</summary>
    public const string Shim = "emushim";

    internal const string ShimFileName = "libemushim.so";

    /// <summary>Environment variable naming the shim file, or a directory holding it; tried last.</summary>
    public const string ShimPathVariable = "EMU_SHIM_PATH";

    // CA2255 warns that libraries should not run code at load; the resolver has to be in place before the
    // first P/Invoke, whichever wrapper a caller touches first, and registering it has no other effect.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void InstallResolver() => NativeLibrary.SetDllImportResolver(typeof(Libraries).Assembly, Resolve);

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != Shim)
            return 0;
        string path = FindShim(AppContext.BaseDirectory, Environment.GetEnvironmentVariable(ShimPathVariable))
            ?? throw new ShimNotFoundException();
        return NativeLibrary.Load(path);
    }

    /// <summary>
    /// The shim to load: beside the assembly in <paramref name="baseDirectory"/>, else in artifacts/native of the
    /// repository holding <paramref name="baseDirectory"/> (the folder with Emu.sln), else
    /// <paramref name="shimPathVariable"/> (a file, or a directory holding libemushim.so); null when none exists.
    /// </summary>
    internal static string? FindShim(string baseDirectory, string? shimPathVariable)
    {
        string beside = Path.Combine(baseDirectory, ShimFileName);
        if (File.Exists(beside))
            return beside;

        for (DirectoryInfo? dir = new(Path.GetFullPath(baseDirectory)); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Emu.sln")))
                continue;
            string built = Path.Combine(dir.FullName, "artifacts", "native", ShimFileName);
            if (File.Exists(built))
                return built;
            break;
        }

        if (string.IsNullOrEmpty(shimPathVariable))
            return null;
        string configured = Directory.Exists(shimPathVariable)
            ? Path.Combine(shimPathVariable, ShimFileName)
            : shimPathVariable;
        return File.Exists(configured) ? Path.GetFullPath(configured) : null;
    }
}

/// <summary>libemushim.so was found nowhere the resolver looks; the message says how to build it.</summary>
public sealed class ShimNotFoundException() : DllNotFoundException(OneLineMessage)
{
    internal const string OneLineMessage =
        "libemushim.so not found next to emu or in artifacts/native; build it with: dotnet cake cake.cs --target=Native";
}
