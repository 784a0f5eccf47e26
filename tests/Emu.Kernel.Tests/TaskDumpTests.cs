// kernel/sched/core.c sched_show_task() and kernel/workqueue.c print_worker_info() formatting.
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

[TestFixture]
public sealed class TaskDumpTests : KernelTestBase
{
    [TestCase(TaskState.Running, 'R')]
    [TestCase(TaskState.Interruptible, 'S')]
    [TestCase(TaskState.Uninterruptible, 'D')]
    [TestCase(TaskState.Idle, 'D')]
    [TestCase(TaskState.Dead, 'x')]
    public void TaskStateChar_IsTheKernelsStatNamLetter(TaskState state, char expected)
    {
        Assert.That(TaskDump.TaskStateChar(state), Is.EqualTo(expected));
    }

    [Test]
    public void SchedShowTask_OfARunningTask_PrintsRunningTaskInsteadOfTheState()
    {
        using AdoptedTask self = EmuTask.Adopt("fdm-stress", parentPid: 26591);
        using KFrame frame = KFunc.Enter("btrfs_sync_fs");
        var lines = new List<string>();

        TaskDump.SchedShowTask(self.Task, lines);

        Assert.That(lines, Is.EqualTo(new[]
        {
            $"fdm-stress      R  running task        0 {self.Task.Pid,5}  26591 0x00000000",
            "Call Trace:",
            " btrfs_sync_fs",
        }));
    }

    [Test]
    public void PrintWorkerInfo_OfATaskWithoutTheWorkerFlag_IsNull()
    {
        using AdoptedTask self = EmuTask.Adopt("kworker/u4:1");
        self.Task.WorkerHooks = new InfoHooks();

        Assert.That(TaskDump.PrintWorkerInfo(self.Task), Is.Null);
        self.Task.Flags |= TaskFlags.WqWorker;
        Assert.That(TaskDump.PrintWorkerInfo(self.Task), Is.EqualTo("writeback wb_workfn (flush-btrfs-481)"));
    }

    private sealed class InfoHooks : IWorkqueueWorkerHooks
    {
        public void WqWorkerSleeping(EmuTask task)
        {
        }

        public void WqWorkerRunning(EmuTask task)
        {
        }

        public string? WorkerInfo(EmuTask task) => "writeback wb_workfn (flush-btrfs-481)";
    }
}
