using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Emu.Interop;

/// <summary>
/// The shim's error convention: every export returns 0 or -errno. Values are Linux's (asm-generic/errno*.h);
/// the ones listed are those the shim documents returning.
/// </summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int ENOTBLK = 15;
    public const int EBUSY = 16;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int ERANGE = 34;
    public const int ENOSYS = 38;
    public const int ETIME = 62;
    public const int EOPNOTSUPP = 95;

    /// <summary>strerror text for a shim result (-errno) or a positive errno, e.g. "No such file or directory".</summary>
    public static string Message(int result) => Marshal.GetPInvokeErrorMessage(Math.Abs(result));

    /// <summary>Throws <see cref="ShimException"/> when <paramref name="result"/> is negative.</summary>
    public static void ThrowIfError(int result, string what)
    {
        if (result < 0)
            Throw(result, what);
    }

    [DoesNotReturn]
    private static void Throw(int result, string what) => throw new ShimException(-result, what);
}
