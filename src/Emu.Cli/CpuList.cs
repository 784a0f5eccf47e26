namespace Emu.Cli;

/// <summary>Formats CPU numbers the way sysfs cpulist files do ("0-3,64-67").</summary>
internal static class CpuList
{
    public static string Format(IReadOnlyList<int> cpus)
    {
        if (cpus.Count == 0) return "(none)";
        var sorted = cpus.Order().ToArray();
        var parts = new List<string>();
        for (int i = 0; i < sorted.Length;)
        {
            int j = i;
            while (j + 1 < sorted.Length && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? $"{sorted[i]}" : $"{sorted[i]}-{sorted[j]}");
            i = j + 1;
        }
        return string.Join(',', parts);
    }
}
