from pairline.cli import cli

cli()
