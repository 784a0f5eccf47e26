// Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h) that the emulated filesystem returns as
// -errno, as kernel functions do.
namespace Emu.Btrfs;

internal static class Errno
{
    public const int EIO = 5;
    public const int EAGAIN = 11;
    public const int ENOTBLK = 15;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
}
