using Emu.BindGen;

namespace Emu.Interop.Tests;

/// <summary>How build/Emu.BindGen reads a header: type mapping, doc comments, and what it refuses.</summary>
public sealed class BindingGeneratorTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Repo.CreateScratchDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Parse_MapsOpaqueHandlesToNintAndCStringsToBytePointers()
    {
        HeaderModel model = BindingGenerator.Parse(WriteHeader("""
            #include <stdint.h>
            typedef struct h h;
            int32_t f(h **out, const h *in, const char *path, void *buf, uint64_t n);
            """));

        FunctionDecl f = model.Functions.Single();
        Assert.That(f.ReturnType, Is.EqualTo("int"));
        Assert.That(f.Parameters.Select(p => $"{p.CSharpType} {p.Name}"),
            Is.EqualTo(new[] { "nint* out", "nint in", "byte* path", "void* buf", "ulong n" }));
        Assert.That(model.Structs, Is.Empty, "an opaque handle has no layout to bind");
    }

    [Test]
    public void Parse_KeepsFixedArraysAndNestedStructs()
    {
        HeaderModel model = BindingGenerator.Parse(WriteHeader("""
            #include <stdint.h>
            enum lim { N = 4 };
            struct inner { uint8_t b[N]; };
            struct outer { int16_t s; struct inner in; uint32_t w[2]; };
            """));

        Assert.That(model.Structs.Select(s => s.Name), Is.EqualTo(new[] { "inner", "outer" }));
        Assert.That(model.Structs[1].Fields.Select(f => (f.Name, f.CSharpType, f.FixedLength)),
            Is.EqualTo(new[] { ("s", "short", 0), ("in", "inner", 0), ("w", "uint", 2) }));
        Assert.That(model.Structs[0].Fields.Single(), Is.EqualTo(new FieldDecl("b", "byte", 4, "")));
    }

    [Test]
    public void Parse_DocumentsFromTheLineAboveAndTrailingComments_NotSectionBanners()
    {
        HeaderModel model = BindingGenerator.Parse(WriteHeader("""
            #include <stdint.h>
            /* ---------------- */
            /* section banner   */
            /* ---------------- */

            enum e {
            	A = 1,  /* first */
            	B = 2,
            };

            /* Does f: a < b
             *  and more. */
            int32_t f(void);
            struct s {
            	int32_t x;  /* x's doc */
            	int32_t y;
            };
            """));

        Assert.That(model.Enums.Single().Doc, Is.Empty, "a banner separated by a blank line documents nothing");
        Assert.That(model.Enums.Single().Constants.Select(c => (c.Name, c.Value, c.Doc)),
            Is.EqualTo(new[] { ("A", 1L, "first"), ("B", 2L, "") }));
        Assert.That(model.Functions.Single().Doc, Is.EqualTo("Does f: a < b\nand more."));
        Assert.That(model.Structs.Single().Fields.Select(f => f.Doc), Is.EqualTo(new[] { "x's doc", "" }),
            "a trailing comment belongs to its own field, not the next one");
    }

    [Test]
    public void Generate_EscapesDocsAndCSharpKeywords()
    {
        string header = WriteHeader("""
            #include <stdint.h>
            struct iov { uint64_t base; };
            /* Returns count > 0 & more. */
            int32_t g(struct iov *params, int32_t in);
            """);

        string cs = BindingGenerator.Generate(header)[BindingGenerator.BindingsPath];

        Assert.That(cs, Does.Contain("public ulong @base;"));
        Assert.That(cs, Does.Contain("internal static unsafe partial int g(iov* @params, int @in);"));
        Assert.That(cs, Does.Contain("/// <summary>Returns count &gt; 0 &amp; more.</summary>"));
    }

    [Test]
    public void Generate_IsDeterministic()
    {
        string header = Path.Combine(Repo.Root, BindingGenerator.HeaderPath);

        Assert.That(BindingGenerator.Generate(header), Is.EqualTo(BindingGenerator.Generate(header)));
    }

    [Test]
    public void Parse_HeaderWithCompileError_ThrowsClangDiagnostic()
    {
        string header = WriteHeader("int32_t f(void);\n");

        var e = Assert.Throws<BindGenException>(() => BindingGenerator.Parse(header));
        Assert.That(e!.Message, Does.Contain("error").And.Contain("int32_t"));
    }

    [Test]
    public void Parse_HeaderWithWarning_Throws()
    {
        string header = WriteHeader("int f();\nint f(void) ;\nstatic int unused_static(void);\n");

        Assert.Throws<BindGenException>(() => BindingGenerator.Parse(header));
    }

    [TestCase("union u { int a; long b; };", "UnionDecl")]
    [TestCase("#include <stdint.h>\nextern int32_t global_counter;", "VarDecl 'global_counter'")]
    [TestCase("struct s { unsigned a : 3; };", "bit-field")]
    [TestCase("struct p { int a; }; struct q { struct p ps[2]; };", "array of")]
    [TestCase("typedef struct p { int a; } other_name;", "renames")]
    [TestCase("_Bool b(void);", "_Bool")]
    public void Parse_ConstructWithoutFaithfulCSharpForm_ThrowsNamingIt(string source, string named)
    {
        string header = WriteHeader(source + "\n");

        var e = Assert.Throws<BindGenException>(() => BindingGenerator.Parse(header));
        Assert.That(e!.Message, Does.Contain("cannot bind").And.Contain(named));
    }

    private string WriteHeader(string text)
    {
        string path = Path.Combine(_dir, "test.h");
        File.WriteAllText(path, text);
        return path;
    }
}
