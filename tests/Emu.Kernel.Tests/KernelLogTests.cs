// kernel/printk/printk.c behaviour: timestamped records since boot ("[%5lu.%06lu] "), a bounded log buffer
// that drops the oldest records, one record per line, and the console echo.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class KernelLogTests
{
    [TestCase(0L, "[    0.000000] ")]
    [TestCase(12_345_678L, "[   12.345678] ")]
    [TestCase(99_999_999_999L, "[99999.999999] ")]
    [TestCase(123_456_000_001L, "[123456.000001] ")]
    public void FormatTimestamp_PrintsSecondsWidthFiveAndSixDigitMicroseconds(long us, string expected)
    {
        Assert.That(KernelLog.FormatTimestamp(us), Is.EqualTo(expected));
    }

    [Test]
    public void Printk_StampsEachLineWithNonDecreasingTimeSinceBoot()
    {
        var log = new KernelLog();

        log.Printk("first");
        log.Printk("second");
        TimeSpan after = log.Uptime;

        KernelLogRecord[] records = log.Records();
        Assert.That(records.Select(r => r.Text), Is.EqualTo(new[] { "first", "second" }));
        Assert.That(records.Select(r => r.Sequence), Is.EqualTo(new[] { 0L, 1L }));
        Assert.That(records[0].TimestampUs, Is.GreaterThanOrEqualTo(0));
        Assert.That(records[1].TimestampUs, Is.GreaterThanOrEqualTo(records[0].TimestampUs));
        Assert.That(records[1].TimestampUs, Is.LessThanOrEqualTo((long)after.TotalMicroseconds));
        Assert.That(log.FormattedLines[1], Does.Match(@"^\[ {0,4}\d{1,5}\.\d{6}\] second$"));
        Assert.That(log.FormattedLines[1], Is.EqualTo(KernelLog.FormatTimestamp(records[1].TimestampUs) + "second"));
    }

    [Test]
    public void Printk_TextWithNewlines_StoresOneRecordPerLine()
    {
        var log = new KernelLog();

        log.Printk("2 locks held by kworker/u4:1/102:\n #0:  (a){+.+...}, at: f\n #1:  (b){+.+...}, at: g");

        Assert.That(log.Lines, Is.EqualTo(new[]
        {
            "2 locks held by kworker/u4:1/102:", " #0:  (a){+.+...}, at: f", " #1:  (b){+.+...}, at: g",
        }));
    }

    [Test]
    public void Printk_OverCapacity_DropsTheOldestLinesAndCountsThem()
    {
        var log = new KernelLog(capacityChars: 3 * (1 + KernelLog.RecordOverheadChars));

        foreach (string line in new[] { "1", "2", "3", "4", "5" })
        {
            log.Printk(line);
        }

        Assert.That(log.Lines, Is.EqualTo(new[] { "3", "4", "5" }));
        Assert.That(log.Count, Is.EqualTo(3));
        Assert.That(log.DroppedLines, Is.EqualTo(2));
        Assert.That(log.NextSequence, Is.EqualTo(5));
        Assert.That(log.RecordsSince(3).Select(r => r.Text), Is.EqualTo(new[] { "4", "5" }));
        Assert.That(log.RecordsSince(0).Select(r => r.Text), Is.EqualTo(new[] { "3", "4", "5" }));
    }

    [Test]
    public void Printk_LineLongerThanTheBuffer_IsTruncatedToFit()
    {
        var log = new KernelLog(capacityChars: 10 + KernelLog.RecordOverheadChars);
        log.Printk("old");

        log.Printk(new string('x', 50));

        Assert.That(log.Lines, Is.EqualTo(new[] { new string('x', 10) }));
        Assert.That(log.DroppedLines, Is.EqualTo(1));
    }

    [Test]
    public void Printk_EchoesEachTimestampedLineToTheMirrorInOrder()
    {
        var console = new StringWriter { NewLine = "\n" };
        var log = new KernelLog(console);

        log.Printk("INFO: task fdm-stress:106 blocked for more than 2 seconds.");
        log.PrintkLines(["Call Trace:", " schedule"]);

        string[] echoed = console.ToString().TrimEnd('\n').Split('\n');
        Assert.That(echoed, Is.EqualTo(log.FormattedLines));
        Assert.That(echoed[2], Does.Match(@"^\[ *\d+\.\d{6}\]  schedule$"));
    }

    [Test]
    public void PrintkLines_EchoesTheWholeReportInOneWrite()
    {
        // A live progress display on the console redraws itself after every write it is given: a hung-task
        // report must cost one redraw, not one per line.
        var console = new WriteCountingWriter();
        var log = new KernelLog(console);

        log.PrintkLines(["INFO: task fdm-stress:106 blocked for more than 2 seconds.", "Call Trace:\n schedule", " io_schedule"]);

        Assert.That(console.Writes, Is.EqualTo(1));
        Assert.That(console.ToString().TrimEnd('\n').Split('\n'), Is.EqualTo(log.FormattedLines));
    }

    [Test]
    public void PrintkLines_FromConcurrentThreads_KeepsEachBlockContiguous()
    {
        var log = new KernelLog();
        const int blocks = 200;

        Parallel.For(0, 2, t =>
        {
            for (int i = 0; i < blocks; i++)
            {
                log.PrintkLines([$"{t}:{i}:a", $"{t}:{i}:b", $"{t}:{i}:c"]);
            }
        });

        string[] lines = log.Lines;
        Assert.That(lines, Has.Length.EqualTo(2 * blocks * 3));
        for (int i = 0; i < lines.Length; i += 3)
        {
            string block = lines[i][..^1];
            Assert.That(new[] { lines[i], lines[i + 1], lines[i + 2] }, Is.EqualTo(new[] { block + "a", block + "b", block + "c" }));
        }
    }

    [Test]
    public void DumpToFile_WritesEveryLineWithItsTimestamp()
    {
        var log = new KernelLog();
        log.Printk("emu: deadlock detected: circular wait between 2 tasks");
        log.Printk("  cycle: a:1 -> b:2 -> a:1");
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"dmesg-{Guid.NewGuid():N}.txt");

        try
        {
            log.DumpToFile(path);
            Assert.That(File.ReadAllLines(path), Is.EqualTo(log.FormattedLines));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void Clear_ForgetsLinesButKeepsCountingSequences()
    {
        var log = new KernelLog();
        log.Printk("a");

        log.Clear();
        log.Printk("b");

        Assert.That(log.Records().Select(r => (r.Sequence, r.Text)), Is.EqualTo(new[] { (1L, "b") }));
    }

    [Test]
    public void KlogPrintkLines_OnASinkWithoutBlocks_PrintsEachLine()
    {
        IKernelLog saved = Klog.Sink;
        var sink = new LineSink();
        Klog.Sink = sink;
        try
        {
            Klog.PrintkLines(["a", "b"]);
        }
        finally
        {
            Klog.Sink = saved;
        }

        Assert.That(sink.Lines, Is.EqualTo(new[] { "a", "b" }));
    }

    private sealed class LineSink : IKernelLog
    {
        public List<string> Lines { get; } = new();

        public void Printk(string line) => Lines.Add(line);
    }

    // Counts the calls that reach the console: one per WriteLine or Write of a string.
    private sealed class WriteCountingWriter : StringWriter
    {
        public WriteCountingWriter() => NewLine = "\n";

        public int Writes { get; private set; }

        public override void Write(string? value)
        {
            Writes++;
            base.Write(value);
        }

        public override void WriteLine(string? value)
        {
            Writes++;
            base.Write(value + NewLine);
        }
    }
}
