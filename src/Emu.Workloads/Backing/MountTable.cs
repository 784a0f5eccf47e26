// What the host's mount table says about a backing store, read from /proc/self/mountinfo (proc(5)): which
// filesystem type holds a folder (to avoid putting a backing file in RAM), and whether a block device, or the
// loop device over a file, is mounted (Emu must never format a mounted filesystem).
using System.Globalization;

namespace Emu.Workloads.Backing;

/// <summary>One line of /proc/self/mountinfo.</summary>
/// <param name="Device">The st_dev of the mount as "major:minor".</param>
/// <param name="MountPoint">Where it is mounted (octal escapes decoded).</param>
/// <param name="FsType">The filesystem type, e.g. "ext4", "tmpfs".</param>
/// <param name="Source">The mount source, e.g. "/dev/sda1".</param>
public sealed record MountEntry(string Device, string MountPoint, string FsType, string Source);

/// <summary>The host's mounts.</summary>
public sealed class MountTable
{
    private readonly MountEntry[] _entries; // I

    private MountTable(MountEntry[] entries) => _entries = entries;

    /// <summary>Reads /proc/self/mountinfo; an unreadable file gives an empty table.</summary>
    public static MountTable Read()
    {
        string text;
        try
        {
            text = File.ReadAllText("/proc/self/mountinfo");
        }
        catch (IOException)
        {
            return new MountTable([]);
        }
        catch (UnauthorizedAccessException)
        {
            return new MountTable([]);
        }

        return Parse(text);
    }

    /// <summary>Parses mountinfo text (for tests, or a copy of another machine's table).</summary>
    public static MountTable Parse(string mountinfo)
    {
        var entries = new List<MountEntry>();
        foreach (string line in mountinfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] f = line.Split(' ');
            int dash = Array.IndexOf(f, "-", 6);
            if (f.Length < 7 || dash < 0 || dash + 2 >= f.Length)
            {
                continue;
            }

            entries.Add(new MountEntry(f[2], Unescape(f[4]), f[dash + 1], Unescape(f[dash + 2])));
        }

        return new MountTable(entries.ToArray());
    }

    /// <summary>The mount holding <paramref name="path"/> (the longest mount point that prefixes it), if any.</summary>
    public MountEntry? MountOf(string path)
    {
        string full = Canonical(path);
        MountEntry? best = null;
        foreach (MountEntry e in _entries)
        {
            bool under = full == e.MountPoint || e.MountPoint == "/" ||
                         full.StartsWith(e.MountPoint + "/", StringComparison.Ordinal);
            // Later lines mount over earlier ones at the same point.
            if (under && (best is null || e.MountPoint.Length >= best.MountPoint.Length))
            {
                best = e;
            }
        }

        return best;
    }

    /// <summary>
    /// Whether the block device at <paramref name="devicePath"/> is mounted (by device number or by source
    /// path), and where.
    /// </summary>
    public bool IsBlockDeviceMounted(string devicePath, out string mountPoint)
    {
        string real = Canonical(devicePath);
        string? devNumber = BlockDeviceNumber(real);
        foreach (MountEntry e in _entries)
        {
            if ((devNumber is not null && e.Device == devNumber) || (e.Source.StartsWith('/') && Canonical(e.Source) == real))
            {
                mountPoint = e.MountPoint;
                return true;
            }
        }

        mountPoint = "";
        return false;
    }

    /// <summary>
    /// Whether the regular file at <paramref name="filePath"/> backs a loop device that is mounted, and which.
    /// </summary>
    public bool IsLoopBackingMounted(string filePath, out string loopDevice, out string mountPoint)
    {
        string real = Canonical(filePath);
        loopDevice = "";
        mountPoint = "";
        if (!Directory.Exists("/sys/block"))
        {
            return false;
        }

        foreach (string dir in Directory.EnumerateDirectories("/sys/block", "loop*"))
        {
            string backing = Path.Combine(dir, "loop", "backing_file");
            string target;
            try
            {
                target = File.ReadAllText(backing).Trim();
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            string dev = "/dev/" + Path.GetFileName(dir);
            if (target == real && IsBlockDeviceMounted(dev, out mountPoint))
            {
                loopDevice = dev;
                return true;
            }
        }

        return false;
    }

    /// <summary>"major:minor" of a block device from sysfs (/sys/class/block/NAME/dev), or null.</summary>
    public static string? BlockDeviceNumber(string devicePath)
    {
        string name = Path.GetFileName(Canonical(devicePath));
        string dev = Path.Combine("/sys/class/block", name, "dev");
        try
        {
            return File.Exists(dev) ? File.ReadAllText(dev).Trim() : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The absolute path with a final symbolic link resolved (realpath for the common cases).</summary>
    public static string Canonical(string path)
    {
        string full = Path.GetFullPath(path);
        try
        {
            FileSystemInfo? target = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true);
            if (target is not null)
            {
                full = Path.GetFullPath(target.FullName);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo.
    private static string Unescape(string s)
    {
        if (!s.Contains('\\'))
        {
            return s;
        }

        var sb = new System.Text.StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 3 < s.Length &&
                int.TryParse(s.AsSpan(i + 1, 3), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                sb.Append(s[i]);
            }
        }

        return sb.ToString();
    }
}
