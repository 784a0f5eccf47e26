// The shadow stack: the kernel function names a task is inside, pushed and popped by the emulated functions
// (`using var _ = KFunc.Enter("btrfs_start_ordered_extent");`), so reports print kernel-shaped call traces.
// Pushing stores a string literal in a preallocated array: no allocation. Frames past MaxFrames are counted
// but not recorded. Only the task pushes and pops; reports read the array racily, which is exact whenever the
// task is asleep (the case that matters).
namespace Emu.Kernel;

public sealed partial class EmuTask
{
    /// <summary>Deepest recorded shadow-stack depth.</summary>
    public const int MaxFrames = 64;

    private readonly string[] _frames = new string[MaxFrames]; // written by the task only
    private int _depth;                                          // written by the task only

    /// <summary>Pushes a kernel function name; dispose the returned frame to pop it. Call on the current task.</summary>
    public KFrame Enter(string function)
    {
        AssertCurrent();
        int depth = _depth;
        if (depth < MaxFrames)
        {
            _frames[depth] = function;
        }

        Volatile.Write(ref _depth, depth + 1);
        return new KFrame(this, depth);
    }

    /// <summary>Current shadow-stack depth (including frames past <see cref="MaxFrames"/>).</summary>
    public int FrameDepth => Volatile.Read(ref _depth);

    /// <summary>The innermost function name, or null when the stack is empty. Used as lockdep's "at:".</summary>
    public string? TopFrame
    {
        get
        {
            int depth = Math.Min(Volatile.Read(ref _depth), MaxFrames);
            return depth == 0 ? null : _frames[depth - 1];
        }
    }

    /// <summary>A snapshot of the shadow stack, innermost first (the order of a kernel call trace).</summary>
    public string[] Frames
    {
        get
        {
            int depth = Math.Min(Volatile.Read(ref _depth), MaxFrames);
            var frames = new string[depth];
            for (int i = 0; i < depth; i++)
            {
                frames[i] = _frames[depth - 1 - i];
            }

            return frames;
        }
    }

    // The frame i levels below the innermost one, or null past the outermost: a racy read like TopFrame's, for
    // tracers that must not allocate the Frames snapshot.
    internal string? FrameFromTop(int i)
    {
        int depth = Math.Min(Volatile.Read(ref _depth), MaxFrames);
        return i < depth ? _frames[depth - 1 - i] : null;
    }

    internal void PopTo(int depth) => Volatile.Write(ref _depth, depth);
}

/// <summary>One shadow-stack frame; disposing it pops the stack back to where it was pushed.</summary>
public readonly ref struct KFrame
{
    private readonly EmuTask? _task;
    private readonly int _depth;

    internal KFrame(EmuTask task, int depth)
    {
        _task = task;
        _depth = depth;
    }

    /// <summary>Pops this frame (and any frame left above it).</summary>
    public void Dispose() => _task?.PopTo(_depth);
}

/// <summary>Shadow-stack helpers for code that runs on the current task, if any.</summary>
public static class KFunc
{
    /// <summary>Pushes <paramref name="function"/> on the current task's shadow stack; a no-op on host threads.</summary>
    public static KFrame Enter(string function)
    {
        EmuTask? task = EmuTask.Current;
        return task is null ? default : task.Enter(function);
    }
}
