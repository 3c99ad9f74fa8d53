from asyncfix.cli import entry

entry()
