// Fixture plumbing for workqueue tests: a private WorkqueueSystem per test (disposed afterwards), work items
// built from lambdas, gates that work functions block on through schedule(), and an ordered event log.
using System.Collections.Concurrent;
using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Kernel.Tests;

public abstract class WorkqueueTestBase : KernelTestBase
{
    protected WorkqueueSystem Sys { get; private set; } = null!;

    /// <summary>The layout the system is built over: one node with the machine's two CPUs.</summary>
    protected virtual CpuLayout CreateLayout() => new([[0, 1]]);

    protected virtual WorkqueueConfig CreateConfig() => new()
    {
        IdleWorkerTimeoutMs = 300_000,
        CreateCooldownMs = 5,
        ShutdownTimeoutMs = 2000,
    };

    [SetUp]
    public void CreateSystem() => Sys = new WorkqueueSystem(CreateLayout(), CreateConfig());

    [TearDown]
    public void DisposeSystem() => Sys.Dispose();

    /// <summary>A work item running <paramref name="body"/>.</summary>
    protected static TestWork Work(string name, Action<TestWork> body) => new(name, body);

    /// <summary>A work item that does nothing.</summary>
    protected static TestWork Nop(string name) => new(name, static _ => { });

    /// <summary>Runs <paramref name="body"/> as an emulated task on this thread (for the sleeping APIs).</summary>
    protected static void AsTask(Action body)
    {
        using AdoptedTask self = EmuTask.Adopt("wq-test");
        body();
    }

    protected sealed class TestWork : WorkStruct
    {
        private static readonly WorkFunc s_run = static w => ((TestWork)w).Run();
        private readonly Action<TestWork> _body;
        private int _runs;

        public TestWork(string name, Action<TestWork> body)
            : base(s_run, name)
        {
            _body = body;
        }

        public int Runs => Volatile.Read(ref _runs);

        public EmuTask? LastTask { get; private set; }

        private void Run()
        {
            LastTask = EmuTask.Current;
            _body(this);
            Interlocked.Increment(ref _runs);
        }
    }

    protected sealed class TestDelayedWork : DelayedWork
    {
        private static readonly WorkFunc s_run = static w => ((TestDelayedWork)w).Run();
        private int _runs;

        public TestDelayedWork(string name)
            : base(s_run, name)
        {
        }

        public int Runs => Volatile.Read(ref _runs);

        private void Run() => Interlocked.Increment(ref _runs);
    }

    /// <summary>
    /// A gate work functions sleep on (uninterruptibly, through schedule()) until the test opens it; records
    /// how many are waiting.
    /// </summary>
    protected sealed class Gate
    {
        private readonly Completion _open;
        private int _waiting;

        public Gate(string name) => _open = new Completion(name);

        public int Waiting => Volatile.Read(ref _waiting);

        public void Wait()
        {
            Interlocked.Increment(ref _waiting);
            _open.WaitForCompletion();
            Interlocked.Decrement(ref _waiting);
        }

        public void Open() => _open.CompleteAll();
    }

    /// <summary>An ordered record of events from any thread; tests compare positions, never times.</summary>
    protected sealed class EventLog
    {
        private readonly ConcurrentQueue<string> _events = new();

        public void Add(string e) => _events.Enqueue(e);

        public string[] Events => _events.ToArray();

        public int IndexOf(string e)
        {
            int i = Array.IndexOf(Events, e);
            Assert.That(i, Is.GreaterThanOrEqualTo(0), $"event '{e}' never happened; log: {string.Join(", ", Events)}");
            return i;
        }

        public void AssertBefore(string first, string second) =>
            Assert.That(IndexOf(first), Is.LessThan(IndexOf(second)), $"'{first}' should precede '{second}'; log: {string.Join(", ", Events)}");

        public override string ToString() => string.Join(", ", Events);
    }
}
