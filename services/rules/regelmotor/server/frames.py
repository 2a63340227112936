"""Messages between the front and its workers, framed as `multiprocessing.Connection` frames them (a length
header, then the pickled message), so either end may still use `Connection.send` and `recv`.

- `write_message` writes header and message in one system call. `Connection.send` writes a message of more than
  16 KiB in two, and the reader, woken by the header alone, must wait for the rest: a decision (13-33 kB) cost a
  worker two writes and the front two wake-ups.
- `FrameReader` reads on the front's event loop without blocking it: one `readv` into a fixed buffer each time the
  pipe is readable, and every message that has fully arrived is unpickled. `Connection.recv` blocks until a whole
  message is in, in two reads or more; a worker that answers several calls in a row (a batch, see the pool) is
  read in as few reads as the front is slow.
"""

from __future__ import annotations

import os
import pickle
import struct

_SHORT = struct.Struct("!i")  # the header: the payload's size, or -1 and then ...
_LONG = struct.Struct("!Q")  # ... the size of a payload of 2 GiB or more
_CHUNK = 256 * 1024


def write_message(fd: int, message: object) -> None:
    """Send `message` on the blocking pipe `fd`, whole (OSError when the other end is gone)."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    size = len(payload)
    header = _SHORT.pack(size) if size < 0x7FFFFFFF else _SHORT.pack(-1) + _LONG.pack(size)
    written = os.writev(fd, [header, payload])
    if written < len(header) + size:  # a blocking pipe writes all but when a signal cuts it short: write the rest
        rest = memoryview(header + payload)[written:]
        while rest:
            rest = rest[os.write(fd, rest):]


class FrameReader:
    """The messages read from one worker's pipe (`fd`); the pipe must be readable when `read` is called."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._chunk = bytearray(_CHUNK)
        self._pending = bytearray()  # bytes of a message not yet complete

    def read(self) -> list[object]:
        """The messages that have fully arrived (maybe none yet). EOFError once the worker closed its end."""
        count = os.readv(self.fd, [self._chunk])
        if count == 0:
            raise EOFError("the worker closed its end of the pipe")
        data = self._pending
        data += memoryview(self._chunk)[:count]
        messages: list[object] = []
        start = 0
        available = len(data)
        while available - start >= _SHORT.size:
            (size,) = _SHORT.unpack_from(data, start)
            head = _SHORT.size
            if size == -1:
                if available - start < head + _LONG.size:
                    break
                (size,) = _LONG.unpack_from(data, start + head)
                head += _LONG.size
            end = start + head + size
            if end > available:
                break
            messages.append(pickle.loads(data[start + head:end]))
            start = end
        del data[:start]
        return messages
