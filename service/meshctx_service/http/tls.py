"""The serving certificate follows its files: cert-manager renews it, the kubelet swaps the Secret's ``..data``
symlink, and the API server's ``caBundle`` moves to the new CA. A server that kept the certificate it started with
would fail every webhook call from then on — and with ``failurePolicy: Ignore`` admit every job unchecked while
its probes stay green (contract.md "The admission gate never opens by accident").

``CertificateFiles.check(config)`` runs as each connection is accepted, before its TLS handshake (at most once a
``CHECK_EVERY_S``): when the files' identity (device, inode, size, mtime — through any symlinks) has changed, the
pair is loaded into uvicorn's own ``SSLContext``, so this very handshake already uses the new certificate. A pair
that does not load (the certificate written, its key not yet) is logged and tried again at the next check; the
old certificate stays in use meanwhile.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from typing import Any

log = logging.getLogger("meshctx.tls")

Signature = tuple[tuple[int, int, int, int], ...]


def _signature(*paths: str) -> Signature:
    out = []
    for path in paths:
        st = os.stat(path)  # follows symlinks: a kubelet ..data swap is a new inode
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class CertificateFiles:
    CHECK_EVERY_S = 1.0

    def __init__(self) -> None:
        self._signature: Signature | None = None
        self._checked = float("-inf")

    def check(self, config: Any) -> None:
        """Reload ``config.ssl``'s certificate when ``config.ssl_certfile``/``ssl_keyfile`` changed (uvicorn's
        ``Config``; nothing to do without TLS)."""
        context = getattr(config, "ssl", None)
        certfile = getattr(config, "ssl_certfile", None)
        if not isinstance(context, ssl.SSLContext) or not certfile:
            return
        now = time.monotonic()
        if now - self._checked < self.CHECK_EVERY_S:
            return
        self._checked = now
        keyfile = getattr(config, "ssl_keyfile", None)
        paths = [str(certfile)] + ([str(keyfile)] if keyfile else [])
        try:
            signature = _signature(*paths)
            if signature == self._signature:
                return
            context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None, config.ssl_keyfile_password)
        except (OSError, ssl.SSLError) as error:
            log.warning("TLS certificate not reloaded from %s (kept the current one): %s", certfile, error)
            return
        if self._signature is not None:
            log.info("TLS certificate reloaded from %s", certfile)
        self._signature = signature
