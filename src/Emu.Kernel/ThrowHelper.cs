// Throws for Emu.Kernel, kept out of line so the fast paths that check for them stay small.
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Emu.Kernel;

internal static class ThrowHelper
{
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNotATask(string operation) =>
        throw new InvalidOperationException(
            $"{operation} needs an emulated task: call it from an EmuTask body or inside EmuTask.Adopt.");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowInvalidOperation(string message) => throw new InvalidOperationException(message);

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowArgumentOutOfRange(string paramName, string message) =>
        throw new ArgumentOutOfRangeException(paramName, message);
}
