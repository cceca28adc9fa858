from arner.cli import main

main()
