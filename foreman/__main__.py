"""`python -m foreman`: the same as the `foreman` command."""

from foreman.cli import main

main()
