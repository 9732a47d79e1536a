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
import warnings

from .common import WeightsError

MAX_DEPTH = 64
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
_ADD_INTO = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}

# For each opcode: (takes a MARK, values popped below the MARK, values pushed, pushes a MARK,
# handled by name: memo, DUP, STOP).
# A "cell" is a one-element list [depth]: memo and stack share it, so an APPEND to a list
# fetched from the memo deepens the list wherever it is referenced.
_MARK = pickletools.markobject
_SHAPE = {}
for _op in pickletools.opcodes:
    _takes = _MARK in _op.stack_before
    _SHAPE[_op.name] = (_takes, _op.stack_before.index(_MARK) if _takes else len(_op.stack_before),
                        sum(1 for x in _op.stack_after if x is not _MARK), _MARK in _op.stack_after,
                        _op.name in _MEMO_PUTS | _MEMO_GETS | {"DUP", "STOP"})


def scan_pickle(f, max_depth=MAX_DEPTH):
    """Check one pickle from ``f``'s position to its STOP; return the position after STOP.

    ``f`` is a seekable binary file (an ``io.BytesIO``); its position is left after the
    pickle. Raises :class:`WeightsError` on anything the unpickler should not be shown.
    """
    with warnings.catch_warnings():       # genops warns on odd escapes in STRING opcodes
        warnings.simplefilter("ignore")
        return _scan(f, max_depth)


def _scan(f, max_depth):
    stack, marks, memo = [], [], {}
    shape, add_into = _SHAPE, _ADD_INTO
    try:
        for ops, (opcode, arg, pos) in enumerate(pickletools.genops(f)):
            name = opcode.name
            takes_mark, n_below, n_push, push_mark, special = shape[name]
            if special:
                if _memo_dup_or_stop(name, arg, pos, ops, stack, marks, memo):   # STOP
                    return f.tell()
                continue
            deepest = -1                      # the deepest value consumed (-1: none)
            if takes_mark:                    # e.g. APPENDS: [list, MARK, items...]
                if not marks:
                    raise WeightsError(f"pickle opcode {name} without a MARK before it (byte {pos})")
                deepest = _pop_from(stack, marks.pop(), deepest)
            if len(stack) < n_below:
                raise WeightsError(f"pickle opcode {name} needs {n_below} values on the stack at byte {pos}, "
                                   f"there are {len(stack)}")
            if name in add_into:              # the container stays on the stack; it gets deeper
                first = len(stack) - n_below  # APPEND/SETITEM/BUILD: [container, items...]
                deepest = _pop_from(stack, first + 1, deepest)
                container = stack[-1]
                if deepest + 1 > container[0]:
                    container[0] = deepest + 1
                depth = container[0]
            else:
                if n_below:
                    deepest = _pop_from(stack, len(stack) - n_below, deepest)
                depth = deepest + 1 if n_push else 0      # an atom (nothing consumed) is 0 deep
                for _ in range(n_push):
                    stack.append([depth])
                if push_mark:
                    marks.append(len(stack))
                    if len(marks) > max_depth:
                        raise WeightsError(f"pickle opens more than {max_depth} nested MARKs "
                                           f"(at byte {pos}); not a weights file")
            if depth > max_depth:
                raise WeightsError(f"pickle nests objects more than {max_depth} levels deep (at byte "
                                   f"{pos}); a state_dict needs a handful. Refused before unpickling")
    except WeightsError:
        raise
    except (ValueError, EOFError, OverflowError, MemoryError, UnicodeDecodeError) as e:
        raise WeightsError(f"corrupt or truncated pickle ({type(e).__name__}: {e})") from e
    raise WeightsError("pickle data ends without a STOP opcode (truncated file)")


def _pop_from(stack, first, deepest):
    """Remove ``stack[first:]``; returns the deepest of their depths and ``deepest``."""
    for cell in stack[first:]:
        if cell[0] > deepest:
            deepest = cell[0]
    del stack[first:]
    return deepest


def _memo_dup_or_stop(name, arg, pos, ops, stack, marks, memo):
    """The opcodes handled by name: a memo store or fetch, DUP, STOP (returns True at STOP).
    ``ops``: how many opcodes came before this one."""
    if name in _MEMO_PUTS:
        index = len(memo) if name == "MEMOIZE" else arg
        if not stack:
            raise WeightsError(f"pickle memo store ({name}) with an empty stack at byte {pos}")
        if not 0 <= index <= ops:
            raise WeightsError(f"pickle memo index {index} at byte {pos}: a pickler numbers its "
                               f"memo 0, 1, 2 ..., and only {ops} opcodes came before it")
        memo[index] = stack[-1]
    elif name in _MEMO_GETS:
        if arg not in memo:
            raise WeightsError(f"pickle memo fetch of index {arg} at byte {pos}, never stored")
        stack.append(memo[arg])
    elif name == "DUP":               # the same object twice: the same cell
        if not stack:
            raise WeightsError(f"pickle opcode DUP with an empty stack at byte {pos}")
        stack.append(stack[-1])
    else:                             # STOP
        if len(stack) != 1 or marks:
            raise WeightsError(f"pickle ends (STOP at byte {pos}) with {len(stack)} values "
                               f"and {len(marks)} open MARKs on the stack; expected one value")
        return True
    return False
