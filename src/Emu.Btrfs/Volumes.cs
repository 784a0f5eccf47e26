// Mirrors: fs/btrfs/volumes.c (v4.4) btrfs_map_bio for a single-device filesystem, and block/bio.c
// submit_bio_wait.
//
// Model: a btrfs bio addresses the filesystem's logical space; mapping turns it into a device bio. With one
// device, no RAID and a data block group laid out 1:1 on the device, logical and physical byte numbers are
// equal, so mapping sets the device and submits.
// Differs: no chunk tree, stripes, mirrors or bio cloning per stripe (btrfs_end_bio); the bio is submitted
// as it is and completes through the caller's end_io directly.
using Emu.Block;
using Emu.Kernel;

namespace Emu.Btrfs;

/// <summary>fs/btrfs/volumes.c.</summary>
public static class Volumes
{
    private static readonly Action<Bio> s_submitBioWaitEndio = static bio => ((Completion)bio.BiPrivate!).Complete();

    /// <summary>btrfs_map_bio(): sends a bio at logical sector bio.BiSector to the device.</summary>
    public static void BtrfsMapBio(BtrfsFsInfo fsInfo, Bio bio)
    {
        using KFrame frame = KFunc.Enter("btrfs_map_bio");
        bio.BiDisk = fsInfo.Disk;
        BlkCore.SubmitBio(bio);
    }

    /// <summary>submit_bio_wait(): submits <paramref name="bio"/> to <paramref name="disk"/> and sleeps until it completes.</summary>
    /// <returns>The bio's error (0 or -errno). The bio is put.</returns>
    public static int SubmitBioWait(GenDisk disk, Bio bio)
    {
        using KFrame frame = KFunc.Enter("submit_bio_wait");
        var done = new Completion("submit_bio_wait");
        bio.BiDisk = disk;
        bio.BiPrivate = done;
        bio.BiEndIo = s_submitBioWaitEndio;
        BlkCore.SubmitBio(bio);
        done.WaitForCompletionIo();
        int err = bio.BiError;
        bio.Put();
        return err;
    }
}
