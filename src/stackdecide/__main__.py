from stackdecide.cli import main

main()
