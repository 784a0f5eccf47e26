namespace Emu.BindGen;

/// <summary>What the generator keeps of emu_shim.h, in declaration order, with C# types already chosen.</summary>
public sealed record HeaderModel(
    IReadOnlyList<EnumDecl> Enums,
    IReadOnlyList<StructDecl> Structs,
    IReadOnlyList<FunctionDecl> Functions);

/// <param name="Doc">The comment on the line(s) right above the declaration, cleaned of comment markers; "" for none.</param>
public sealed record EnumDecl(string Name, string UnderlyingType, string Doc, IReadOnlyList<EnumConstant> Constants);

public sealed record EnumConstant(string Name, long Value, string Doc);

public sealed record StructDecl(string Name, string Doc, IReadOnlyList<FieldDecl> Fields);

/// <param name="CSharpType">Element type for a fixed buffer, otherwise the field type.</param>
/// <param name="FixedLength">Element count of a fixed array; 0 for a scalar or struct field.</param>
public sealed record FieldDecl(string Name, string CSharpType, int FixedLength, string Doc);

public sealed record FunctionDecl(string Name, string ReturnType, string Doc, IReadOnlyList<ParameterDecl> Parameters);

public sealed record ParameterDecl(string Name, string CSharpType);
