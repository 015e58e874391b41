from modelsteward.cli import main

main()
