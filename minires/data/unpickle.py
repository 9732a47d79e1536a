"""Reading a pickle from a stranger: a small stack machine that knows only what data files need.

A pickle is a little program for a stack machine: "push the string 'data'", "push an empty
list", "append these ten ints to it", "call numpy's _reconstruct with these arguments"...
Python's own unpickler runs that program in C and trusts the file on three counts:

* **what it calls**: any function the file names (``os.system`` as easily as numpy's);
* **how much it allocates**: numpy's ``_reconstruct(ndarray, (300000, 3072), 'B')`` allocates
  the 920 MB it is asked for, from a 153-byte file, with no data to fill it;
* **how deep and how shared it is**: a list nested 200,000 deep, or ten lists that each hold
  the one before ten times (the "billion laughs"), is small in memory but explodes in
  ``repr()`` or in any code that walks it.

So :func:`load_pickle` runs the program itself, in Python, one opcode at a time
(:func:`pickletools.genops` decodes them; it never calls or allocates what a pickle names):

* it knows the ~40 opcodes that Python 2 and 3 write for dicts, lists, tuples, numbers,
  strings, bytes and numpy arrays; any other is refused;
* a pickle may call only numpy's array and dtype rebuilders and ``_codecs.encode``, and those
  calls reach our own stand-ins (:mod:`.pickle_calls`), which check their arguments before
  anything is allocated: an array is made only from bytes that are in the file, so shape x item size must
  equal the number of bytes given;
* at most ``max_ops`` opcodes (the caller derives it from the file's size), containers nested
  at most ``MAX_DEPTH`` deep, dict keys only strings or bytes, and a container may not change
  once it is inside another one -- a pickler never does that, and it is how a list could
  be made to contain itself or to grow deeper after it was measured.

Error messages show the file's values through :func:`~.pickle_calls.short_repr`: a few dozen
characters, never the whole of a value (whose ``repr`` could be gigabytes).
"""
import io
import pickletools

from .download import DataError
from .pickle_calls import CALLABLE, CALLS, PendingArray, Refused, build, short_repr

MAX_DEPTH = 8        # nesting of lists, dicts and tuples; a CIFAR batch needs 3


# ------------------------------------------------------------------ the machine
_VALUES = {"BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "BINFLOAT", "FLOAT", "BINUNICODE",
           "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
           "BYTEARRAY8"}                                       # the opcode's argument is the value
_PY2_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING"}     # Python 2's str: read as bytes
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
_TUPLE_SIZES = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


class _Machine:
    """The unpickler's stack, marks and memo, and one method per family of opcodes.

    ``depth`` (by id) is how deeply each container nests; ``frozen`` (ids) are the containers
    already placed inside another, which may not change any more; ``keep`` holds every
    container made, so that no id is reused while the machine runs.
    """

    def __init__(self):
        self.stack, self.marks, self.memo = [], [], {}
        self.depth, self.frozen, self.keep = {}, set(), []

    def step(self, name, arg):
        if name in _VALUES:
            self.stack.append(arg)
        elif name in _PY2_STRINGS:
            self.stack.append(arg.encode("latin-1"))
        elif name in _CONSTANTS:
            self.stack.append(_CONSTANTS[name])
        elif name in _MEMO_PUTS:
            self.memo[len(self.memo) if name == "MEMOIZE" else arg] = self.peek(1)[0]
        elif name in _MEMO_GETS:
            if arg not in self.memo:
                raise Refused(f"expected a memo index stored before, got {short_repr(arg)}")
            self.stack.append(self.memo[arg])
        elif name == "MARK":
            if len(self.marks) >= MAX_DEPTH:
                raise Refused(f"expected at most {MAX_DEPTH} MARKs open at once, got more")
            self.marks.append(len(self.stack))
        elif name in _TUPLE_SIZES:
            self.stack.append(self.new(tuple, self.pop(_TUPLE_SIZES[name])))
        else:
            self.step_more(name, arg)

    def step_more(self, name, arg):
        if name in ("EMPTY_LIST", "EMPTY_DICT"):
            self.stack.append(self.new(list if name == "EMPTY_LIST" else dict, []))
        elif name in ("TUPLE", "LIST"):
            self.stack.append(self.new(tuple if name == "TUPLE" else list, self.pop_mark()))
        elif name == "DICT":
            self.stack.append(self.new(dict, self.pop_mark()))
        elif name in ("APPEND", "APPENDS", "SETITEM", "SETITEMS"):
            items = self.pop_mark() if name.endswith("S") else self.pop(1 if name == "APPEND" else 2)
            self.put_into(self.peek(1)[0], items)
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            module, attr = arg.split(" ", 1) if name == "GLOBAL" else self.pop(2)
            self.stack.append(self.find(module, attr))
        elif name == "REDUCE":
            self.stack.append(self.call(*self.pop(2)))
        elif name == "BUILD":
            state = self.pop(1)[0]
            if id(self.peek(1)[0]) in self.frozen:
                raise Refused("expected BUILD on a new object, got BUILD on one already placed elsewhere")
            build(self.peek(1)[0], state)
        elif name in ("PROTO", "FRAME"):
            if name == "PROTO" and not 0 <= arg <= 5:
                raise Refused(f"expected pickle protocol 0 to 5, got {arg}")
        else:
            raise Refused(f"expected the opcodes Python writes for dicts, lists, numbers, strings and numpy "
                          f"arrays, got {name}")

    # -------------------------------------------------------------- the stack
    def peek(self, n):
        if len(self.stack) < n:
            raise Refused(f"expected {n} values on the stack, got {len(self.stack)}")
        return self.stack[len(self.stack) - n:]

    def pop(self, n):
        items = self.peek(n) if n else []
        del self.stack[len(self.stack) - n:]
        return items

    def pop_mark(self):
        if not self.marks:
            raise Refused("expected a MARK before this opcode, got none")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    # -------------------------------------------------------------- containers
    def settle(self, item, container):
        """``item`` as it will sit inside ``container``: a built array, frozen from now on."""
        if container is not None and item is container:
            raise Refused(f"expected data, got a {type(item).__name__} that contains itself")
        if isinstance(item, PendingArray):
            if item.array is None:
                raise Refused("expected numpy's _reconstruct to be followed by the array's contents "
                              "(BUILD), got an array without them")
            return item.array
        if isinstance(item, (list, dict, tuple)):
            self.frozen.add(id(item))
        return item

    def new(self, kind, items):
        if kind is tuple:
            container = tuple(self.settle(x, None) for x in items)
            self.depth[id(container)] = self.deepest(container)
        else:
            container = kind()
            self.depth[id(container)] = 0
            if items:
                self.put_into(container, items)
        self.keep.append(container)
        return container

    def deepest(self, items):
        depth = 1 + max((self.depth.get(id(x), 0) for x in items), default=-1)
        if depth > MAX_DEPTH:
            raise Refused(f"expected lists, dicts and tuples nested at most {MAX_DEPTH} deep, got deeper")
        return depth

    def put_into(self, container, items):
        if id(container) in self.frozen or not isinstance(container, (list, dict)):
            raise Refused(f"expected a new list or dict to add items to, got a {type(container).__name__}"
                          f"{' already placed inside another' if id(container) in self.frozen else ''}")
        items = [self.settle(x, container) for x in items]
        self.depth[id(container)] = max(self.depth[id(container)], self.deepest(items))
        if isinstance(container, list):
            container.extend(items)
            return
        if len(items) % 2:
            raise Refused(f"expected key-value pairs for a dict, got {len(items)} values")
        keys = items[::2]
        bad = next((k for k in keys if not isinstance(k, (str, bytes))), None)
        if bad is not None:
            raise Refused(f"expected dict keys that are strings or bytes, got a {type(bad).__name__}")
        container.update(zip(keys, items[1::2]))

    # -------------------------------------------------------------- calls
    def find(self, module, name):
        if not (isinstance(module, str) and isinstance(name, str)):
            raise Refused(f"expected a module and a name, got {short_repr((module, name))}")
        if (module, name) not in CALLABLE:
            raise Refused(f"refusing to load {module[:60]}.{name[:60]}: expected only numpy arrays, lists, "
                          "dicts, numbers and strings (a pickle that names other functions can run code)")
        return CALLABLE[(module, name)]

    def call(self, function, args):
        if not any(function is f for f in CALLS) or not isinstance(args, tuple):
            raise Refused(f"expected a call to numpy's array rebuilders, got a call to {short_repr(function)}")
        try:
            result = function(*args)
        except TypeError:
            raise Refused(f"expected the arguments numpy writes, got {function.__name__}"
                          f"{short_repr(args)}") from None
        self.keep.append(result)
        return result


def load_pickle(raw, path, max_ops):
    """The object pickled in ``raw`` (the bytes of the file ``path``), read by the machine above.

    Python 2's strings come back as bytes (as ``pickle.load(f, encoding='bytes')``), numpy
    arrays as read-only arrays over the file's own bytes. Anything the machine refuses, and a
    truncated or corrupt pickle, is a :class:`DataError` naming ``path``.
    """
    machine, f, pos = _Machine(), io.BytesIO(raw), 0
    try:
        for count, (opcode, arg, pos) in enumerate(_opcodes(f, path)):
            if count >= max_ops:
                raise Refused(f"expected at most {max_ops} pickle opcodes for a file of {len(raw)} bytes, "
                              "got more")
            if opcode.name == "STOP":
                if len(machine.stack) != 1 or machine.marks:
                    raise Refused(f"expected one value at STOP, got {len(machine.stack)} and "
                                  f"{len(machine.marks)} open MARKs")
                if f.tell() != len(raw):
                    raise Refused(f"expected the file to end at the pickle's STOP, got "
                                  f"{len(raw) - f.tell()} bytes more")
                return machine.settle(machine.stack[0], None)
            machine.step(opcode.name, arg)
    except Refused as e:
        raise DataError(f"{path}: {e} (pickle byte {pos})") from None
    raise DataError(f"{path}: expected a pickle, got no STOP opcode (the file is truncated)")


def _opcodes(f, path):
    """pickletools.genops, with a corrupt or truncated pickle (an unknown opcode, an argument
    cut short or claiming more bytes than are left) as a DataError."""
    try:
        yield from pickletools.genops(f)
    except (ValueError, EOFError, OverflowError) as e:
        raise DataError(f"{path}: expected a complete pickle, got {type(e).__name__}: "
                        f"{str(e)[:80]} (the file is truncated or corrupt)") from None
