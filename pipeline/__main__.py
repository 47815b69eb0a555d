"""`python -m pipeline <command>`: the toolkit's command line (the same as the `gmm-resnext` script)."""
from pipeline.cli import cli

if __name__ == "__main__":
    cli(prog_name="python -m pipeline")
