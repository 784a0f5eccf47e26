using Emu.Workloads.Compare;

namespace Emu.Workloads.Tests;

/// <summary>fio-style job files of `emu compare --job`: fio's keys mapped onto the stress mix, and one-line errors naming file and line.</summary>
[TestFixture]
public sealed class JobFileTests
{
    [Test]
    public void Sections_TakeTheGlobalKeysBeforeThem_AndTheirOwnOverride()
    {
        var jobs = JobFile.Parse("""
            ; defaults
            [global]
            nrfiles=3
            filesize=128k
            runtime=2

            [mixed]
            rw=randrw
            rwmixread=75
            numjobs=4
            bs=8k

            [writes]
            rw=randwrite
            numjobs=2
            runtime=500ms
            conflicts=0
            snapshots=0
            """, "job.fio");

        Assert.That(jobs.Select(j => j.Name), Is.EqualTo(new[] { "mixed", "writes" }));
        var mixed = jobs[0];
        Assert.Multiple(() =>
        {
            Assert.That(mixed.Source, Is.EqualTo("job.fio"));
            Assert.That(mixed.Files, Is.EqualTo(3));
            Assert.That(mixed.FileSize, Is.EqualTo(128 * 1024));
            Assert.That(mixed.Tasks, Is.EqualTo(4));
            Assert.That(mixed.Readers, Is.EqualTo(3), "rwmixread=75 of 4 jobs");
            Assert.That(mixed.BlockSize, Is.EqualTo(8 * 1024));
            Assert.That(mixed.Runtime, Is.EqualTo(TimeSpan.FromSeconds(2)));
            Assert.That(mixed.Conflicts, Is.True);
            Assert.That(jobs[1].Readers, Is.Zero);
            Assert.That(jobs[1].Runtime, Is.EqualTo(TimeSpan.FromMilliseconds(500)));
            Assert.That(jobs[1].Conflicts, Is.False);
            Assert.That(jobs[1].Snapshotter, Is.False);
            Assert.That(jobs[1].Syncer, Is.True);
        });
    }

    [Test]
    public void Size_IsSplitOverTheFiles()
    {
        var job = JobFile.Parse("[reads]\nrw=randread\nsize=1m\nnrfiles=4\n", "j.fio")[0];

        Assert.That(job.FileSize, Is.EqualTo(256 * 1024));
        Assert.That(job.Readers, Is.EqualTo(job.Tasks));
    }

    [TestCase("[mixed]\nrw=randrw\nblocksize2=4k\n", "j.fio:3: unknown key 'blocksize2' in [mixed] (known: ")]
    [TestCase("[global]\nbs=12q\n[a]\n", "j.fio:2: bad size '12q' for 'bs' (use 4k, 16k, 128k)")]
    [TestCase("rw=randrw\n[a]\n", "j.fio:1: key 'rw' outside any [section]")]
    [TestCase("[global]\nrw=randrw\n", "j.fio: no job sections")]
    [TestCase("[a]\nrw=sideways\n", "j.fio:2: bad value 'sideways' for 'rw'")]
    [TestCase("[a]\nnumjobs=0\n", "j.fio:2: bad value '0' for 'numjobs'")]
    [TestCase("[a]\nconflicts=yes\n", "j.fio:2: bad value 'yes' for 'conflicts' (use 0 or 1)")]
    [TestCase("[a]\nruntime=soon\n", "j.fio:2: bad duration 'soon' for 'runtime'")]
    [TestCase("[a]\nbs=6k\n", "j.fio:2: bs '6k' must be a multiple of 4k")]
    [TestCase("[a]\ndirect=0\n", "j.fio:2: direct=0 is not supported")]
    [TestCase("[a]\n[a]\n", "j.fio:2: job [a] is defined twice")]
    [TestCase("[a b]\n", "j.fio:1: job name 'a b' is not a name")]
    [TestCase("[a\n", "j.fio:1: section header '[a' lacks its closing ']'")]
    [TestCase("[a]\nnumjobs=8\nfilesize=16k\nconflicts=0\n", "j.fio:1: job [a]: no-conflicts gives each of the 8 tasks")]
    public void BadInput_IsOneLineNamingFileAndLine(string text, string expected)
    {
        var e = Assert.Throws<WorkloadUsageException>(() => JobFile.Parse(text, "j.fio"));

        Assert.That(e!.Message, Does.StartWith(expected));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void MissingFile_IsAUsageErrorNamingIt()
    {
        string path = Path.Combine(Path.GetTempPath(), "emu-no-such-job-" + Guid.NewGuid() + ".fio");

        var e = Assert.Throws<WorkloadUsageException>(() => JobFile.Load(path));

        Assert.That(e!.Message, Does.StartWith(path + ": cannot read the job file"));
    }
}
