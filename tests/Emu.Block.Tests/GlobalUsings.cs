global using Emu.Interop;
global using Emu.Kernel;
global using NUnit.Framework;
