from vouch.cli.entry import run

run()
