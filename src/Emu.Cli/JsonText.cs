// The --json output of every command: what a writer callback writes, as indented UTF-8 JSON text.
using System.Text;
using System.Text.Json;

namespace Emu.Cli;

/// <summary>Renders JSON written through a <see cref="Utf8JsonWriter"/> as text.</summary>
internal static class JsonText
{
    /// <summary>What <paramref name="write"/> writes, indented.</summary>
    public static string Of(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            write(w);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
