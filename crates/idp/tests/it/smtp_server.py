"""The mail tests' SMTP server: aiosmtpd (Debian's python3-aiosmtpd) with STARTTLS required
(or implicit TLS) and AUTH required, writing each delivered message into a folder as JSON
(envelope, headers, decoded text and HTML parts) for the test to read.

Usage: smtp_server.py OUTDIR PORT CERT KEY USER PASSWORD starttls|implicit
Prints "ready" once it accepts connections; runs until killed.
"""

import email
import email.policy
import json
import os
import signal
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

outdir, port, cert, key, user, password, mode = sys.argv[1:8]


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "subject": str(msg["subject"]),
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "authenticated": bool(session.authenticated),
        }
        name = "%d-%d.json" % (time.time_ns(), os.getpid())
        tmp = os.path.join(outdir, "." + name)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(outdir, name))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode():
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
common = dict(hostname="127.0.0.1", port=int(port), authenticator=authenticate, auth_required=True)
if mode == "starttls":
    controller = Controller(Handler(), tls_context=context, require_starttls=True, auth_require_tls=True, **common)
else:
    controller = Controller(Handler(), ssl_context=context, auth_require_tls=False, **common)
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
