"""The sandbox launcher: the part that runs in the confined child process.

Standard library only, and importing only within this package (an import contract and
`tests/test_sandbox.py` check both): the child runs `python -I -S`, with no site-packages
and no Foreman, and imports this folder as the top-level package `launcher`
(`foreman.workers.sandbox.supervisor.LAUNCH_CODE`).
"""
