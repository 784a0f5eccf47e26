using System.Globalization;

namespace Emu.Cli;

/// <summary>fio's size syntax: an integer with an optional k/m/g/t suffix (base 1024, as fio's default kb_base).</summary>
internal static class SizeParser
{
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        var s = text.Trim().ToLowerInvariant();
        if (s.EndsWith("ib")) s = s[..^2];
        else if (s.EndsWith('b') && s.Length > 1 && char.IsLetter(s[^2])) s = s[..^1];
        long unit = 1;
        if (s.Length > 0)
        {
            switch (s[^1])
            {
                case 'k': unit = 1L << 10; break;
                case 'm': unit = 1L << 20; break;
                case 'g': unit = 1L << 30; break;
                case 't': unit = 1L << 40; break;
            }
            if (unit != 1) s = s[..^1];
        }
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0) return false;
        if (n > long.MaxValue / unit) return false;
        bytes = n * unit;
        return true;
    }

    public static long Parse(string text, string option)
    {
        if (TryParse(text, out var bytes)) return bytes;
        throw new UsageException($"{option} '{text}' is not a size; use a positive number with an optional k, m, g or t suffix (e.g. 4k, 1M)");
    }

    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1 && v % 1024 == 0) { v /= 1024; u++; }
        return $"{v.ToString(CultureInfo.InvariantCulture)}{units[u]}";
    }
}
