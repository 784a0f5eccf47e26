// Finds libclang for the [LibraryImport("libclang")] declarations. Debian's libclang1-14 ships only versioned
// names (libclang-14.so.1, and libclang.so.1 under /usr/lib/llvm-14/lib), which the default probing of
// "libclang" never tries.
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu.BindGen;

/// <summary>libclang could not be loaded; the message is one line saying how to install it.</summary>
public sealed class LibClangNotFoundException() : DllNotFoundException(
    "libclang not found (tried libclang.so, libclang.so.1, libclang-14.so.1, /usr/lib/llvm-*/lib/libclang.so.1): " +
    "install libclang1-14 with: dotnet cake cake.cs --target=Deps");

internal static class LibClangResolver
{
    private static readonly string[] s_names = ["libclang.so", "libclang.so.1", "libclang-14.so.1"];

    [ModuleInitializer]
    internal static void Install() => NativeLibrary.SetDllImportResolver(typeof(LibClangResolver).Assembly, Resolve);

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != Clang.Library)
            return 0;
        foreach (string candidate in Candidates())
        {
            if (NativeLibrary.TryLoad(candidate, out nint handle))
                return handle;
        }
        throw new LibClangNotFoundException();
    }

    private static IEnumerable<string> Candidates()
    {
        foreach (string name in s_names)
            yield return name;
        if (!Directory.Exists("/usr/lib"))
            yield break;
        // Newest LLVM first, compared as numbers so llvm-15 comes before llvm-9.
        IEnumerable<string> llvmDirs = Directory.GetDirectories("/usr/lib", "llvm-*")
            .OrderByDescending(dir => int.TryParse(Path.GetFileName(dir)["llvm-".Length..], out int v) ? v : -1);
        foreach (string dir in llvmDirs)
            yield return Path.Combine(dir, "lib", "libclang.so.1");
    }
}
