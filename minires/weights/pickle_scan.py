"""Read a pickle's opcodes before anything is built: the bounds the unpickler cannot keep.

The allow-list unpickler (:mod:`.unpickler`) decides *what* a pickle may call. It cannot
decide how *big* or how *deep* the result is, and Python's C unpickler trusts the file on
both counts:

* a tuple nested 200,000 deep, used as a dict key, is hashed recursively in C, with no
  recursion check: the process dies with SIGSEGV (``torch.load(weights_only=True)`` too);
* ``LONG_BINPUT 2**27`` makes the C unpickler grow its memo table to 2**27 slots, 2 GB, for
  a 9-byte file;
* ``BINBYTES8`` with a length of 2**40 makes it allocate that many bytes *before* reading.

So :func:`scan_pickle` first walks the opcodes with :func:`pickletools.genops` (pure
Python, iterative, never calls or allocates what the pickle names) and simulates the
unpickler's stack with one small "cell" per object holding its nesting depth:

* every argument is read (genops refuses a length that runs past the end of the data);
* a container's depth is 1 + the deepest thing put in it; more than ``max_depth`` levels,
  or more than ``max_depth`` open MARKs, is refused. Tuples cannot change after they are
  built, so a tuple's depth here is exact -- and tuples are what C hashes recursively;
  lists and dicts mutated later are depth-checked again when :func:`.pth._resolve` walks them;
* a memo index must be at most the number of opcodes before it (the pickler numbers its
  memo 0, 1, 2 ..., one store per object), so the memo table stays smaller than the file;
  a memo fetch must name a stored index.

Only then is the pickle handed to the unpickler.
"""
import pickletools

from .common import WeightsError

MAX_DEPTH = 64
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
_ADD_INTO = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}


class _Cell:
    """One object of the simulated stack: only how deep it is."""
    __slots__ = ("depth",)

    def __init__(self, depth):
        self.depth = depth


def _pop_mark(stack, marks, op):
    if not marks:
        raise WeightsError(f"pickle opcode {op} without a MARK before it")
    start = marks.pop()
    items = stack[start:]
    del stack[start:]
    return items


def _pop(stack, n, op):
    if len(stack) < n:
        raise WeightsError(f"pickle opcode {op} needs {n} values on the stack, there are {len(stack)}")
    items = stack[len(stack) - n:]
    del stack[len(stack) - n:]
    return items


def scan_pickle(f, max_depth=MAX_DEPTH):
    """Check one pickle from ``f``'s position to its STOP; return the position after STOP.

    ``f`` is a seekable binary file (an ``io.BytesIO``); its position is left after the
    pickle. Raises :class:`WeightsError` on anything the unpickler should not be shown.
    """
    stack, marks, memo = [], [], {}
    try:
        for ops, (opcode, arg, pos) in enumerate(pickletools.genops(f)):
            name = opcode.name
            if name in _MEMO_PUTS:
                index = len(memo) if name == "MEMOIZE" else arg
                if not stack:
                    raise WeightsError(f"pickle memo store ({name}) with an empty stack at byte {pos}")
                if not 0 <= index <= ops:
                    raise WeightsError(f"pickle memo index {index} at byte {pos}: a pickler numbers its "
                                       f"memo 0, 1, 2 ..., and only {ops} opcodes came before it")
                memo[index] = stack[-1]
                continue
            if name in _MEMO_GETS:
                if arg not in memo:
                    raise WeightsError(f"pickle memo fetch of index {arg} at byte {pos}, never stored")
                stack.append(memo[arg])
                continue
            if name == "DUP":
                if not stack:
                    raise WeightsError(f"pickle opcode DUP with an empty stack at byte {pos}")
                stack.append(stack[-1])
                continue
            if name == "STOP":
                if len(stack) != 1 or marks:
                    raise WeightsError(f"pickle ends (STOP at byte {pos}) with {len(stack)} values "
                                       f"and {len(marks)} open MARKs on the stack; expected one value")
                return f.tell()
            before = opcode.stack_before      # e.g. APPENDS: [list, markobject, stackslice]
            items = []
            if pickletools.markobject in before:
                items = _pop_mark(stack, marks, name)              # everything above the MARK
                before = before[:before.index(pickletools.markobject)]
            consumed = _pop(stack, len(before), name) + items
            if name in _ADD_INTO:             # the container stays; it gets deeper
                container, added = consumed[0], consumed[1:]
                if added:
                    container.depth = max(container.depth, 1 + max(c.depth for c in added))
                stack.append(container)
                depth = container.depth
            else:
                depth = 1 + max(c.depth for c in consumed) if consumed else 0
                for produced in opcode.stack_after:
                    if produced is pickletools.markobject:
                        marks.append(len(stack))
                        if len(marks) > max_depth:
                            raise WeightsError(f"pickle opens more than {max_depth} nested MARKs "
                                               f"(at byte {pos}); not a weights file")
                    else:
                        stack.append(_Cell(depth))
            if depth > max_depth:
                raise WeightsError(f"pickle nests objects more than {max_depth} levels deep (at byte "
                                   f"{pos}); a state_dict needs a handful. Refused before unpickling")
    except WeightsError:
        raise
    except (ValueError, EOFError, OverflowError, MemoryError, UnicodeDecodeError) as e:
        raise WeightsError(f"corrupt or truncated pickle ({type(e).__name__}: {e})") from e
    raise WeightsError("pickle data ends without a STOP opcode (truncated file)")
