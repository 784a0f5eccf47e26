// Reads emu_shim.h through libclang and turns its declarations into a HeaderModel. Only declarations spelled
// in the header itself are kept (not stdint.h's); anything the generator cannot bind faithfully (unions,
// globals, arrays of structs, bool, floating point) stops it with the header line, rather than being dropped.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu.BindGen;

/// <summary>The header cannot be bound: a clang diagnostic, or a construct the generator does not map.</summary>
public sealed class BindGenException(string message) : Exception(message);

internal sealed unsafe class HeaderParser : IDisposable
{
    // -fparse-all-comments: the header documents itself with ordinary /* */ comments, not /** */ ones.
    private static readonly string[] s_baseArgs = ["-x", "c", "-std=c11", "-Wall", "-Wextra", "-fparse-all-comments"];

    private readonly string _headerPath;
    private readonly nint _index;
    private readonly nint _tu;

    private HeaderParser(string headerPath)
    {
        _headerPath = headerPath;
        _index = Clang.clang_createIndex(excludeDeclarationsFromPCH: 0, displayDiagnostics: 0);
        try
        {
            _tu = ParseTranslationUnit();
        }
        catch
        {
            Clang.clang_disposeIndex(_index);
            throw;
        }
    }

    public static HeaderModel Parse(string headerPath)
    {
        if (!File.Exists(headerPath))
            throw new BindGenException($"{headerPath}: no such header");
        using var parser = new HeaderParser(Path.GetFullPath(headerPath));
        parser.ThrowOnDiagnostics();
        return parser.ReadModel();
    }

    public void Dispose()
    {
        Clang.clang_disposeTranslationUnit(_tu);
        Clang.clang_disposeIndex(_index);
    }

    private nint ParseTranslationUnit()
    {
        string[] args = [.. s_baseArgs, "-I" + Path.GetDirectoryName(_headerPath)];
        var native = new nint[args.Length];
        nint file = Marshal.StringToCoTaskMemUTF8(_headerPath);
        try
        {
            for (int i = 0; i < args.Length; i++)
                native[i] = Marshal.StringToCoTaskMemUTF8(args[i]);
            fixed (nint* argv = native)
            {
                nint tu = Clang.clang_parseTranslationUnit(_index, (byte*)file, (byte**)argv, args.Length, null, 0,
                    Clang.CXTranslationUnit_SkipFunctionBodies);
                if (tu == 0)
                    throw new BindGenException($"{_headerPath}: libclang could not parse the header");
                return tu;
            }
        }
        finally
        {
            foreach (nint arg in native)
                Marshal.FreeCoTaskMem(arg);
            Marshal.FreeCoTaskMem(file);
        }
    }

    private void ThrowOnDiagnostics()
    {
        uint count = Clang.clang_getNumDiagnostics(_tu);
        for (uint i = 0; i < count; i++)
        {
            nint diagnostic = Clang.clang_getDiagnostic(_tu, i);
            try
            {
                if (Clang.clang_getDiagnosticSeverity(diagnostic) >= CXDiagnosticSeverity.Warning)
                {
                    throw new BindGenException(Clang.Take(Clang.clang_formatDiagnostic(diagnostic,
                        Clang.clang_defaultDiagnosticDisplayOptions())));
                }
            }
            finally
            {
                Clang.clang_disposeDiagnostic(diagnostic);
            }
        }
    }

    private HeaderModel ReadModel()
    {
        var enums = new List<EnumDecl>();
        var structs = new List<StructDecl>();
        var functions = new List<FunctionDecl>();
        foreach (CXCursor cursor in Children(Clang.clang_getTranslationUnitCursor(_tu)))
        {
            if (Clang.clang_Location_isFromMainFile(Clang.clang_getCursorLocation(cursor)) == 0)
                continue;
            switch (Clang.clang_getCursorKind(cursor))
            {
                case CXCursorKind.StructDecl:
                    // `typedef struct emu_ring emu_ring;` declares an opaque handle: nothing to lay out.
                    if (Clang.clang_isCursorDefinition(cursor) != 0)
                        structs.Add(ReadStruct(cursor));
                    break;
                case CXCursorKind.EnumDecl:
                    enums.Add(ReadEnum(cursor));
                    break;
                case CXCursorKind.FunctionDecl:
                    functions.Add(ReadFunction(cursor));
                    break;
                case CXCursorKind.TypedefDecl:
                    CheckTypedef(cursor);
                    break;
                default:
                    throw Unsupported(cursor, $"{KindSpelling(cursor)} '{Spelling(cursor)}'");
            }
        }
        return new HeaderModel(enums, structs, functions);
    }

    private StructDecl ReadStruct(CXCursor cursor)
    {
        string name = Spelling(cursor);
        var fields = new List<FieldDecl>();
        foreach (CXCursor child in Children(cursor))
        {
            if (Clang.clang_getCursorKind(child) != CXCursorKind.FieldDecl)
                throw Unsupported(child, $"{KindSpelling(child)} '{Spelling(child)}' in struct {name}");
            fields.Add(ReadField(name, child));
        }
        return new StructDecl(name, LeadingDoc(cursor), fields);
    }

    private FieldDecl ReadField(string structName, CXCursor cursor)
    {
        string name = Spelling(cursor);
        string where = $"{structName}.{name}";
        if (Clang.clang_Cursor_isBitField(cursor) != 0)
            throw Unsupported(cursor, $"bit-field {where}");

        CXType type = Clang.clang_getCanonicalType(Clang.clang_getCursorType(cursor));
        if (type.kind == CXTypeKind.ConstantArray)
        {
            CXType element = Clang.clang_getCanonicalType(Clang.clang_getArrayElementType(type));
            // C# fixed buffers hold primitives only; an array of structs would need [InlineArray].
            string? elementType = IntegerType(element);
            if (elementType is null)
                throw Unsupported(cursor, $"field {where}: array of {TypeSpelling(element)}");
            return new FieldDecl(name, elementType, checked((int)Clang.clang_getArraySize(type)), TrailingDoc(cursor));
        }
        return new FieldDecl(name, MapType(cursor, type, where), 0, TrailingDoc(cursor));
    }

    private EnumDecl ReadEnum(CXCursor cursor)
    {
        string name = Spelling(cursor);
        if (name.Length == 0 || name.Contains(' '))
            throw Unsupported(cursor, "anonymous enum: name it so C# can");
        string underlying = MapType(cursor, Clang.clang_getEnumDeclIntegerType(cursor), $"enum {name}");
        bool unsigned = underlying is "byte" or "ushort" or "uint" or "ulong";
        var constants = new List<EnumConstant>();
        foreach (CXCursor child in Children(cursor))
        {
            if (Clang.clang_getCursorKind(child) != CXCursorKind.EnumConstantDecl)
                continue;
            long value = unsigned
                ? checked((long)Clang.clang_getEnumConstantDeclUnsignedValue(child))
                : Clang.clang_getEnumConstantDeclValue(child);
            constants.Add(new EnumConstant(Spelling(child), value, TrailingDoc(child)));
        }
        return new EnumDecl(name, underlying, LeadingDoc(cursor), constants);
    }

    private FunctionDecl ReadFunction(CXCursor cursor)
    {
        string name = Spelling(cursor);
        CXType type = Clang.clang_getCursorType(cursor);
        string returnType = MapType(cursor, Clang.clang_getResultType(type), $"{name} result");
        int count = Clang.clang_Cursor_getNumArguments(cursor);
        var parameters = new List<ParameterDecl>(count);
        for (uint i = 0; i < count; i++)
        {
            CXCursor argument = Clang.clang_Cursor_getArgument(cursor, i);
            string argumentName = Spelling(argument);
            if (argumentName.Length == 0)
                throw Unsupported(argument, $"{name}: parameter {i} has no name");
            parameters.Add(new ParameterDecl(argumentName,
                MapType(argument, Clang.clang_getCursorType(argument), $"{name}({argumentName})")));
        }
        return new FunctionDecl(name, returnType, LeadingDoc(cursor), parameters);
    }

    // C# knows a struct by its tag only, so a typedef may only repeat the tag (`typedef struct x x;`).
    private void CheckTypedef(CXCursor cursor)
    {
        CXType underlying = Clang.clang_getCanonicalType(Clang.clang_getCursorType(cursor));
        string name = Spelling(cursor);
        if (underlying.kind == CXTypeKind.Record && Spelling(Clang.clang_getTypeDeclaration(underlying)) != name)
            throw Unsupported(cursor, $"typedef {name} renames struct {TypeSpelling(underlying)}");
    }

    private string MapType(CXCursor at, CXType type, string where)
    {
        CXType canonical = Clang.clang_getCanonicalType(type);
        switch (canonical.kind)
        {
            case CXTypeKind.Void:
                return "void";
            case CXTypeKind.Pointer:
                CXType pointee = Clang.clang_getCanonicalType(Clang.clang_getPointeeType(canonical));
                // An incomplete struct is an opaque handle: C# carries it as an address, as SafeHandle does.
                if (pointee.kind == CXTypeKind.Record && Clang.clang_Type_getSizeOf(pointee) < 0)
                    return "nint";
                return MapType(at, pointee, where) + "*";
            case CXTypeKind.Record:
                if (Clang.clang_Type_getSizeOf(canonical) < 0)
                    throw Unsupported(at, $"{where}: opaque {TypeSpelling(canonical)} by value");
                return Spelling(Clang.clang_getTypeDeclaration(canonical));
            case CXTypeKind.Enum:
                return Spelling(Clang.clang_getTypeDeclaration(canonical));
            default:
                return IntegerType(canonical) ?? throw Unsupported(at, $"{where}: type {TypeSpelling(type)}");
        }
    }

    // Integers map by signedness and width; plain char is a UTF-8 code unit.
    private static string? IntegerType(CXType canonical)
    {
        bool? signed = canonical.kind switch
        {
            CXTypeKind.SChar or CXTypeKind.Short or CXTypeKind.Int or CXTypeKind.Long or CXTypeKind.LongLong => true,
            CXTypeKind.Char_S or CXTypeKind.Char_U or CXTypeKind.UChar or CXTypeKind.UShort or CXTypeKind.UInt
                or CXTypeKind.ULong or CXTypeKind.ULongLong => false,
            _ => null,
        };
        if (signed is null)
            return null;
        if (canonical.kind is CXTypeKind.Char_S or CXTypeKind.Char_U)
            return "byte";
        return (Clang.clang_Type_getSizeOf(canonical), signed.Value) switch
        {
            (1, true) => "sbyte",
            (1, false) => "byte",
            (2, true) => "short",
            (2, false) => "ushort",
            (4, true) => "int",
            (4, false) => "uint",
            (8, true) => "long",
            (8, false) => "ulong",
            _ => null,
        };
    }

    // A comment documents a declaration only when it ends on the line above it; the header's section banners
    // are separated from what follows by a blank line, and clang would otherwise attach them.
    private static string LeadingDoc(CXCursor cursor)
    {
        string raw = Clang.Take(Clang.clang_Cursor_getRawCommentText(cursor));
        if (raw.Length == 0)
            return "";
        uint commentEnd = Line(Clang.clang_getRangeEnd(Clang.clang_Cursor_getCommentRange(cursor)));
        uint declarationStart = Line(Clang.clang_getRangeStart(Clang.clang_getCursorExtent(cursor)));
        return commentEnd + 1 == declarationStart ? CleanComment(raw) : "";
    }

    // Fields and enum constants are documented by a comment after them on the same line, which clang
    // (with -fparse-all-comments) would attach to the next declaration instead; read it from the tokens.
    private string TrailingDoc(CXCursor cursor)
    {
        CXSourceLocation end = Clang.clang_getRangeEnd(Clang.clang_getCursorExtent(cursor));
        nint file;
        uint line, column, offset;
        Clang.clang_getExpansionLocation(end, &file, &line, &column, &offset);
        CXSourceRange rest = Clang.clang_getRange(end, Clang.clang_getLocation(_tu, file, line + 1, 1));
        CXToken* tokens;
        uint count;
        Clang.clang_tokenize(_tu, rest, &tokens, &count);
        try
        {
            for (uint i = 0; i < count; i++)
            {
                if (Line(Clang.clang_getTokenLocation(_tu, tokens[i])) != line)
                    break;
                if (Clang.clang_getTokenKind(tokens[i]) == CXTokenKind.Comment)
                    return CleanComment(Clang.Take(Clang.clang_getTokenSpelling(_tu, tokens[i])));
            }
            return "";
        }
        finally
        {
            if (tokens != null)
                Clang.clang_disposeTokens(_tu, tokens, count);
        }
    }

    internal static string CleanComment(string raw)
    {
        var lines = new List<string>();
        foreach (string rawLine in raw.Split('\n'))
        {
            string line = rawLine.Trim();
            if (line.StartsWith("/*", StringComparison.Ordinal))
                line = line.TrimStart('/').TrimStart('*');
            else if (line.StartsWith("//", StringComparison.Ordinal))
                line = line.TrimStart('/');
            else if (line.StartsWith('*') && !line.StartsWith("*/", StringComparison.Ordinal))
                line = line[1..];
            if (line.EndsWith("*/", StringComparison.Ordinal))
                line = line[..^2].TrimEnd('*');
            line = line.Trim();
            // Rulers such as "/* ----- */" frame a comment; they say nothing.
            if (line.Length > 0 && line.Trim('-', '=', '*').Length == 0)
                continue;
            lines.Add(line);
        }
        while (lines.Count > 0 && lines[0].Length == 0)
            lines.RemoveAt(0);
        while (lines.Count > 0 && lines[^1].Length == 0)
            lines.RemoveAt(lines.Count - 1);
        return string.Join('\n', lines);
    }

    private static uint Line(CXSourceLocation location)
    {
        uint line, column, offset;
        Clang.clang_getExpansionLocation(location, null, &line, &column, &offset);
        return line;
    }

    private BindGenException Unsupported(CXCursor at, string what) =>
        new($"{_headerPath}:{Line(Clang.clang_getCursorLocation(at))}: cannot bind {what}");

    private static string Spelling(CXCursor cursor) => Clang.Take(Clang.clang_getCursorSpelling(cursor));

    private static string KindSpelling(CXCursor cursor) =>
        Clang.Take(Clang.clang_getCursorKindSpelling(Clang.clang_getCursorKind(cursor)));

    private static string TypeSpelling(CXType type) => Clang.Take(Clang.clang_getTypeSpelling(type));

    private static List<CXCursor> Children(CXCursor parent)
    {
        var children = new List<CXCursor>();
        GCHandle handle = GCHandle.Alloc(children);
        try
        {
            Clang.clang_visitChildren(parent, &CollectChild, GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        return children;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static CXChildVisitResult CollectChild(CXCursor cursor, CXCursor parent, nint clientData)
    {
        ((List<CXCursor>)GCHandle.FromIntPtr(clientData).Target!).Add(cursor);
        return CXChildVisitResult.Continue;
    }
}
