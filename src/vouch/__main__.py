from vouch.cli.main import run

run()
