"""A loopback TCP proxy in front of one server, for tests that need answers lost on the way back.

It forwards both ways until `drop_replies` is called; from then on what the server sends is read and thrown
away - the calls reach the server and take effect, their answers never reach the client, as over a network that
broke at the wrong moment. Everything the client sent is kept (`sent`, and `sent_while_dropping`), so a test can
tell which requests reached this server: gRPC sends a small message uncompressed, within one HTTP/2 DATA frame.
When the server's side closes (the server died), the client's side is closed too.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._dropping = threading.Event()
        self._lock = threading.Lock()
        self._sent = bytearray()
        self._sent_while_dropping = bytearray()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="tcp-proxy-accept", daemon=True).start()

    def drop_replies(self) -> None:
        """From now on, nothing the server sends reaches the client."""
        self._dropping.set()

    def sent(self) -> bytes:
        with self._lock:
            return bytes(self._sent)

    def sent_while_dropping(self) -> bytes:
        with self._lock:
            return bytes(self._sent_while_dropping)

    def close(self) -> None:
        """Stop listening and close every connection (a client connecting again is refused)."""
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(self._upstream, timeout=5)
                server.settimeout(None)
            except OSError:  # the server is gone: so is this connection
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, to_server: bool) -> None:
        try:
            while data := source.recv(65536):
                if to_server:
                    with self._lock:
                        self._sent += data
                        if self._dropping.is_set():
                            self._sent_while_dropping += data
                    target.sendall(data)
                elif not self._dropping.is_set():
                    target.sendall(data)
        except OSError:
            pass
        finally:  # one side ended: end the other, so the client sees the server go
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # wakes a thread blocked in recv on it, which close alone does not
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
