"""The ``minires`` command (also ``python -m minires``).

    parser.py    the subcommands and their options (options.py: the checked option types)
    commands.py  what each subcommand does, a ``cmd_*`` function returning the exit code
    explain.py   ``minires explain``'s (a heat map over an image, written as a PNG)
    here         ``main``: parse, run, and turn what went wrong into one line and an exit code

Exit codes, the same in every subcommand:

    0    it worked
    1    it could not be done: a file or a data set that is missing or wrong, a path that names a
         folder where a file belongs (or the reverse), a run that diverged, a gradient check that
         failed, memory that ran out (``minires COMMAND: error: ...``)
    2    the command line itself is wrong: an unknown option or name, a value out of range, options
         that do not go together (``minires COMMAND: error: ... (see: minires COMMAND --help)``):
         argparse's errors, and ``UsageError`` raised by a command before it does any work

A path's problem reads the same in every command (``minires/files.py``): ``no image at X``,
``X: a folder, not a checkpoint; did you mean X/best.npz?``, ``X: a file, not a folder``.
    130  stopped by Ctrl-C (SIGINT); ``minires train`` saves its run first
    143  stopped by SIGTERM (what ``kill``, SLURM and Kubernetes send); ``minires train`` saves first
"""
import sys
import warnings

from ..data import DataNotice
from .options import HelpFormatter, UsageError
from .parser import build_parser

__all__ = ["main", "build_parser", "HelpFormatter", "UsageError"]


def main(argv=None):
    """Run the command; returns the exit code (this module's docstring: 0, 1, 2, 130, 143)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) and bad options (2): a code, for callers and tests
        return e.code
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prog = args.parser_prog                    # 'minires train', 'minires experiment degradation' (options.py)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _notes_on_one_line(warnings.showwarning)
            return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        _end_other_processes("interrupted")
        return 130
    except UsageError as e:
        print(f"{prog}: error: {e} (see: {prog} --help)", file=sys.stderr)
        return 2
    except (ValueError, TypeError, KeyError, RuntimeError, OSError, ArithmeticError, ImportError, MemoryError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError would add quotes
        if getattr(e, "raised_on_every_rank", False):   # under mpiexec: every rank has it; rank 0 says it
            if _rank() == 0:
                print(f"{prog}: error: {message}", file=sys.stderr)
            return 1
        print(f"{prog}: error: {message}", file=sys.stderr)
        _end_other_processes(f"{prog} failed on this rank; ending every rank")
        return 1


def _notes_on_one_line(show):
    """``warnings.showwarning`` that prints a DataNotice as one line, ``note: ...``, like the other
    notes of the command line; any other warning as Python prints it."""
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataNotice):
            print(f"note: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning


def _rank():
    """This process's rank under mpiexec (0 otherwise)."""
    if "minires.parallel.mpi" in sys.modules:
        from ..parallel.mpi import current_world
        if current_world() is not None:
            return current_world().rank
    return 0


def _end_other_processes(message):
    """Under mpiexec, a rank that fails ends them all (the others may wait for it in an all-reduce)."""
    if "minires.parallel.mpi" in sys.modules:
        from ..parallel.mpi import abort_others, current_world
        if current_world() is not None:
            abort_others(current_world(), message)
