"""`dhf`: the command-line interface, one module per command group. The only package that parses
arguments; every command maps the factory's errors (`config.errors.DhfError`) to one line on stderr
and the error's exit code."""
