return Emu.Cli.EmuApp.Run(args);
