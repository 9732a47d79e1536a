"""The option types and the parser class of the ``minires`` command.

Every numeric option is checked when it is parsed: a bad value is one line naming the option,
what it must be and what came, with exit code 2 (argparse's code for usage errors). The rules
are train/runcheck.py's ``OPTION_RULES``: the same for an option, a config and a checkpoint.
"""
import argparse

from ..train.runcheck import OPTION_RULES, Rule


class UsageError(ValueError):
    """A bad option value found after parsing (e.g. --topk larger than the model's classes): exit code 2."""


def number(rule):
    """An argparse ``type`` that parses an int or float and applies ``rule`` (train/runcheck.py's
    ``Rule``: the same rules as a config or checkpoint). A rule without ``what`` leaves the
    option's name to argparse's "argument --x:" prefix."""
    def check(text):
        try:
            value = rule.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{rule.what + ' ' if rule.what else ''}must be "
                                             f"{'an integer' if rule.kind is int else 'a number'}, got {text!r}") from None
        problem = rule.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    check.__name__ = rule.kind.__name__  # argparse names the type in some messages
    return check


def option(name):
    """The argparse type of a training option: ``OPTION_RULES[name]``."""
    return number(OPTION_RULES[name])


def positive_int(what):
    return number(Rule(what, int, 1))


class Parser(argparse.ArgumentParser):
    """argparse, with a one-line error (the usage is one ``--help`` away) and defaults in the help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, recording in ``parser_prog`` the innermost parser's name ('minires train')."""
        namespace, extra = super().parse_known_args(args, namespace)
        if not hasattr(namespace, "parser_prog"):
            namespace.parser_prog = self.prog
        return namespace, extra

    def parse_args(self, args=None, namespace=None):
        """argparse's, but an unknown option names the subcommand it was given to:
        ``minires train: error: unrecognized arguments: --bogus (see: minires train --help)``."""
        namespace, extra = self.parse_known_args(args, namespace)
        if extra:
            prog = namespace.parser_prog
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extra)} (see: {prog} --help)\n")
        return namespace


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends '(default: X)' to an option's help, unless the help already says its default or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.required:
            return text
        return super()._get_help_string(action)


DEVICE_HELP = "cpu (NumPy) or cuda (CuPy on an NVIDIA GPU)"
DATA_ROOT_HELP = "where data sets are kept (default: $MINIRES_DATA or ~/.cache/minires)"
