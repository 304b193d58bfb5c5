"""A course's TLS certificates for its Dask cluster, and the `Security` that the grader connects with.

    write_certs(DIR) -> ca.pem        the course's own certificate authority (its private key is not kept)
                        node.pem      one certificate for the scheduler, the workers and the grader, signed by it
                        node-key.pem  that certificate's private key (mode 0600)
    security(DIR)    -> distributed.security.Security: mutual TLS, every connection encrypted

Dask checks that each side's certificate is signed by the CA in ca.pem (not the host name: a course's machines are
often named by IP address), so whoever holds node.pem and node-key.pem may join the cluster and no one else may.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import KitError

if TYPE_CHECKING:
    from distributed.security import Security

CA, NODE, NODE_KEY = "ca.pem", "node.pem", "node-key.pem"


def write_certs(folder: Path, *, days: int = 365, name: str = "autograder course") -> list[Path]:
    """Make a new CA and one node certificate signed by it, valid for `days`; returns the files written. Refuses to
    replace existing files: a cluster started with them would stop accepting the others' certificates."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if days < 1:
        raise KitError(f"--days must be at least 1, not {days}.")
    paths = [folder / CA, folder / NODE, folder / NODE_KEY]
    there = [p.name for p in paths if p.exists()]
    if there:
        raise KitError(
            f"{folder} already holds {', '.join(there)}: the cluster's machines may be using them. Make the new "
            "certificates in an empty folder, then replace the old ones on every machine at once."
        )
    now = dt.datetime.now(dt.UTC)
    valid = (now - dt.timedelta(minutes=5), now + dt.timedelta(days=days))  # a few minutes of clock skew

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    node_key = ec.generate_private_key(ec.SECP256R1())
    node = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} node")]))
        .issuer_name(ca_name)
        .public_key(node_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # every node is a server (scheduler, worker) and a client (worker, grader) of the others
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    _write_new(paths[0], ca.public_bytes(pem), 0o644)
    _write_new(paths[1], node.public_bytes(pem), 0o644)
    key = node_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_new(paths[2], key, 0o600)
    return paths


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` from the start (a key is never readable by others, not even for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def security(folder: Path) -> Security:
    """The grader's side of the course's TLS: its CA, and the node certificate and key as the client's."""
    from distributed.security import Security

    missing = [name for name in (CA, NODE, NODE_KEY) if not (folder / name).is_file()]
    if missing:
        raise KitError(
            f"--certs {folder} has no {', '.join(missing)}: make the course's certificates with "
            "`autograder cluster-certs DIR` (docs/class-grading.md)."
        )
    return Security(
        tls_ca_file=str(folder / CA),
        tls_client_cert=str(folder / NODE),
        tls_client_key=str(folder / NODE_KEY),
        require_encryption=True,
    )
