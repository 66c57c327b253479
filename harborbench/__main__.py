"""``python -m harborbench``: the same program as the ``harborbench`` command."""

from harborbench.cli import main

if __name__ == "__main__":
    main()
