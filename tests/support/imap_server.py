"""A small real IMAP4rev1 server on 127.0.0.1 for the poll test: folders in memory, one client at a time.

It speaks just the commands `comms bounces poll` uses (CAPABILITY, LOGIN, CREATE, SELECT, UID SEARCH,
UID FETCH BODY.PEEK[] or RFC822.SIZE, UID MOVE, or UID COPY + UID STORE + EXPUNGE when MOVE is not
offered, LOGOUT),
over a real socket, so imaplib's side of the conversation is exercised as it is against a real server.
"""

from __future__ import annotations

import re
import socketserver
import threading
from typing import Any

_COMMAND = re.compile(rb"^(\S+) (?:(UID) )?(\S+) ?(.*)$", re.IGNORECASE)


def _unquote(word: str) -> str:
    return word[1:-1].replace('\\"', '"').replace("\\\\", "\\") if word.startswith('"') else word


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def handle(self) -> None:
        box = self.server.owner
        selected: str | None = None
        self.reply("* OK IMAP4rev1 test server ready")
        for raw in self.rfile:
            match = _COMMAND.match(raw.rstrip(b"\r\n"))
            if match is None:
                continue
            tag, uid, name, rest = (g.decode() if g else "" for g in match.groups())
            name = name.upper()
            with box.lock:
                if name == "CAPABILITY":
                    self.reply("* CAPABILITY IMAP4rev1" + (" MOVE" if box.offer_move else ""))
                elif name == "LOGIN":
                    user, password = (_unquote(w) for w in rest.split(" ", 1))
                    if (user, password) != box.credentials:
                        self.reply(f"{tag} NO [AUTHENTICATIONFAILED] bad credentials")
                        continue
                elif name == "CREATE":
                    folder = _unquote(rest)
                    if folder in box.folders:
                        self.reply(f"{tag} NO [ALREADYEXISTS] exists")
                        continue
                    box.folders[folder] = {}
                elif name == "SELECT":
                    selected = _unquote(rest)
                    self.reply(f"* {len(box.folders[selected])} EXISTS")
                    self.reply("* OK [UIDVALIDITY 1] ok")
                elif name == "SEARCH" and uid and selected is not None:
                    self.reply("* SEARCH " + " ".join(str(u) for u in sorted(box.folders[selected])))
                elif name == "FETCH" and uid and selected is not None:
                    number = int(rest.split(" ", 1)[0])
                    data = box.folders[selected][number]
                    box.fetched.append(number)
                    if "RFC822.SIZE" in rest.upper():
                        self.reply(f"* 1 FETCH (UID {number} RFC822.SIZE {len(data)})")
                        self.reply(f"{tag} OK FETCH completed")
                        box.fetched.pop()
                        continue
                    self.wfile.write(
                        f"* 1 FETCH (UID {number} BODY[] {{{len(data)}}}\r\n".encode() + data + b")\r\n"
                    )
                elif name in ("MOVE", "COPY") and uid and selected is not None:
                    number_text, target = rest.split(" ", 1)
                    number = int(number_text)
                    box.folders[_unquote(target)][box.next_uid()] = box.folders[selected][number]
                    if name == "MOVE":
                        del box.folders[selected][number]
                elif name == "STORE" and uid and selected is not None:
                    box.deleted.add((selected, int(rest.split(" ", 1)[0])))
                elif name == "EXPUNGE" and selected is not None:
                    for folder, number in sorted(box.deleted):
                        box.folders[folder].pop(number, None)
                    box.deleted.clear()
                elif name == "LOGOUT":
                    self.reply("* BYE")
                    self.reply(f"{tag} OK LOGOUT completed")
                    return
                else:
                    self.reply(f"{tag} BAD unknown command {name}")
                    continue
            self.reply(f"{tag} OK {name} completed")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ImapServer


class ImapServer:
    """``with ImapServer(credentials=("u", "p")) as imap:``; ``imap.folders[name]`` maps UID -> bytes."""

    def __init__(self, *, credentials: tuple[str, str], offer_move: bool = True) -> None:
        self.credentials = credentials
        self.offer_move = offer_move
        self.folders: dict[str, dict[int, bytes]] = {"INBOX": {}}
        self.deleted: set[tuple[str, int]] = set()
        self.fetched: list[int] = []  # UIDs whose body was downloaded
        self.lock = threading.Lock()
        self._uid = 0
        self._server = _Server(("127.0.0.1", 0), _Session)
        self._server.owner = self
        self.port: int = self._server.server_address[1]

    def next_uid(self) -> int:
        self._uid += 1
        return self._uid

    def add(self, folder: str, data: bytes) -> None:
        self.folders.setdefault(folder, {})[self.next_uid()] = data

    def __enter__(self) -> ImapServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
