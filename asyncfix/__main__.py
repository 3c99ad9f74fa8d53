from asyncfix.cli import main

main()
