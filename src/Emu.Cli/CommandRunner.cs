using System.CommandLine;
using System.CommandLine.Invocation;
using Emu.Interop;

namespace Emu.Cli;

/// <summary>Runs the parsed command and turns every failure into one line and an exit code.</summary>
internal static class CommandRunner
{
    public const int ExitOk = 0;
    public const int ExitDetected = 1;
    public const int ExitUsage = 2;
    public const int ExitInternal = 70;

    public static int Run(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var command = parse.CommandResult.Command;
            var path = command == root ? "emu" : "emu " + FullName(command);
            Console.Error.WriteLine($"emu: {parse.Errors[0].Message} (see '{path} --help')");
            return ExitUsage;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"emu: {e.Message}");
            return ExitUsage;
        }
        catch (ShimNotFoundException e)
        {
            Console.Error.WriteLine($"emu: {e.Message}");
            return ExitUsage;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"emu: internal error: {e.GetType().Name}: {OneLine(e.Message)}");
            return ExitInternal;
        }
    }

    private static string FullName(Command command)
    {
        var names = new List<string>();
        for (Command? c = command; c is not null && c is not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault())
            names.Insert(0, c.Name);
        return string.Join(' ', names);
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}

/// <summary>Bad input from the user: printed as one line, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
