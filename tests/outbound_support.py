"""Test support for outbound HTTP (``apps.core.outbound``): two real servers on one port, one on 127.0.0.2 (it stands
for the public address a name is vetted to; the policy allow-lists it as a public address would pass) and one on
127.0.0.1 (the inside a rebinding name is turned to), and a DNS resolver whose answers change between lookups.

The resolver is the one thing faked (``socket.getaddrinfo``, for the test names only): a name server that answers
a public address first and 127.0.0.1 the second time cannot exist on this offline machine. Every other part is
real: the sockets, the HTTP servers, httpx and httpcore, TLS with a certificate for the name.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VETTED, INSIDE = "127.0.0.2", "127.0.0.1"


@dataclass
class Server:
    """A real HTTP server on ``address``; ``seen`` lists (method, path, Host header) of what reached it."""

    name: str
    address: str
    httpd: ThreadingHTTPServer
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    redirect_to: str = ""

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]


def _handler(server_ref: list[Server]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _answer(self) -> None:
            server = server_ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            server.seen.append((self.command, self.path, self.headers.get("Host", "")))
            if self.path.startswith("/redirect") and server.redirect_to:
                self.send_response(302)
                self.send_header("Location", server.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"server": server.name, "host": self.headers.get("Host", "")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _answer

    return Handler


def start_server(name: str, address: str, port: int = 0, *, tls: ssl.SSLContext | None = None) -> Server:
    ref: list[Server] = []
    httpd = ThreadingHTTPServer((address, port), _handler(ref))
    server = Server(name, address, httpd)
    if tls is not None:
        tls.sni_callback = lambda sock, sni, context: server.sni.append(sni)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    ref.append(server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return server


def start_pair(*, tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None) -> tuple[Server, Server]:
    """The vetted server on 127.0.0.2 and the inside one on 127.0.0.1, on the same port (so a URL reaches either,
    depending only on the address it connects to)."""
    for _ in range(20):
        vetted = start_server("vetted", VETTED, tls=tls[0] if tls else None)
        try:
            inside = start_server("inside", INSIDE, vetted.port, tls=tls[1] if tls else None)
        except OSError:
            stop(vetted)
            continue
        return vetted, inside
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


def stop(*servers: Server) -> None:
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


class RebindingResolver:
    """``socket.getaddrinfo`` for the test names: each name answers its list of addresses in turn (the last one
    from then on); any other name or address goes to the real resolver. ``lookups`` counts lookups per name."""

    def __init__(self, real, answers: dict[str, list[str]]) -> None:
        self.real = real
        self.answers = {name: list(addresses) for name, addresses in answers.items()}
        self.lookups: Counter[str] = Counter()

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self.real(host, port, family, type, proto, flags)
        self.lookups[name] += 1
        queue = self.answers[name]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]


def certificates(directory: Path, names: dict[str, str]) -> tuple[ssl.SSLContext, dict[str, ssl.SSLContext]]:
    """A throwaway CA (a client context that trusts it) and, per key of ``names``, a server context whose
    certificate is for the DNS name ``names[key]``, signed by that CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpux test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    client = ssl.create_default_context(cafile=str(ca_path))
    servers = {}
    for key, dns_name in names.items():
        server_key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{key}.pem", directory / f"{key}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_path), str(key_path))
        servers[key] = context
    return client, servers
