"""``python -m xentcli``: the same as the ``xent`` command."""

from xentcli.cli.main import main

if __name__ == "__main__":
    main()
