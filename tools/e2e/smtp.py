"""The bench's mail relay: SMTP with STARTTLS required and a login, as a real relay (Mailgun,
SES, a provider's relay) would; each accepted message lands as a file the cases read.

Run with the bench's own venv (`.venv-e2e`, aiosmtpd):
`python -m tools.e2e.smtp HOST PORT CERT KEY USER PASSWORD MAILDIR`.
"""

from __future__ import annotations

import ssl
import sys
import threading
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> None:
    from aiosmtpd.controller import Controller  # type: ignore[import-not-found]
    from aiosmtpd.smtp import AuthResult  # type: ignore[import-not-found]

    host, port, cert, key, user, password, maildir = argv
    out = Path(maildir)
    out.mkdir(parents=True, exist_ok=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            name = out / f"{len(list(out.iterdir())):04d}.eml"
            head = f"X-Bench-Login: {session.auth_data.login.decode()}\nX-Bench-Rcpt: {','.join(envelope.rcpt_tos)}\n"
            name.write_bytes(head.encode() + envelope.content)
            return "250 OK"

    def login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = data.login.decode() == user and data.password.decode() == password
        return AuthResult(success=ok, handled=False, auth_data=data)

    controller = Controller(
        Sink(),
        hostname=host,
        port=int(port),
        tls_context=context,
        require_starttls=True,
        authenticator=login,
        auth_required=True,
    )
    controller.start()
    print(f"smtp: listening on {host}:{port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
