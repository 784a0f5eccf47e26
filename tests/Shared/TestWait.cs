// Shared by the test projects (linked into each csproj): the handshakes tests use to wait for what emulated tasks
// do on their own threads, each bounded, so a broken emulation fails its test instead of hanging the suite.
global using static Emu.Testing.TestWait;

using Emu.Kernel;
using NUnit.Framework;

namespace Emu.Testing;

internal static class TestWait
{
    /// <summary>How long a handshake may take before the test fails.</summary>
    public const int HandshakeTimeoutMs = 10_000;

    /// <summary>Spins until <paramref name="condition"/> holds; fails the test if it never does.</summary>
    public static void WaitUntil(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + HandshakeTimeoutMs;
        var spin = new SpinWait();
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                Assert.Fail($"timed out waiting until {what}");
            }

            spin.SpinOnce();
        }
    }

    /// <summary>Joins a task from the host thread and rethrows its failure.</summary>
    public static void JoinOk(EmuTask task)
    {
        Assert.That(task.Join(HandshakeTimeoutMs), Is.True, $"{task} did not exit");
        Assert.That(task.Exception, Is.Null, $"{task} failed: {task.Exception}");
    }
}
