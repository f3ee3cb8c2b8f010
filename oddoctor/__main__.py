from oddoctor.cli.main import main

main()
