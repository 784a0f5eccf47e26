namespace Emu.Workloads;

/// <summary>
/// A run cannot start as asked (a refused or too small backing store, a bad option value): the message is one
/// line for the user, and nothing was written. The CLI prints it and exits with status 2.
/// </summary>
public sealed class WorkloadUsageException(string message) : Exception(message);
