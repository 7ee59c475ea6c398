"""A --tls ensemble: kazoo over TLS with the cluster's CA, client certificate and key."""

import socket
import ssl

import pytest
from kazoo.client import KazooClient

pytestmark = pytest.mark.zkdev(voters=1, tls=True)


def test_kazoo_talks_tls_with_the_clusters_ca_cert_and_key(zk_ensemble):
    tls = zk_ensemble.tls
    zk = KazooClient(
        hosts=zk_ensemble.secure_connect_string,
        use_ssl=True,
        ca=tls.ca,
        certfile=tls.cert,
        keyfile=tls.key,
        verify_certs=True,
        timeout=10,
    )
    zk.start(timeout=20)
    try:
        zk.create("/over-tls", b"secret")
        assert zk.get("/over-tls")[0] == b"secret"
        # The same znode through the plain port: one ensemble behind both.
        plain = KazooClient(hosts=zk_ensemble.connect_string)
        plain.start(timeout=20)
        assert plain.get("/over-tls")[0] == b"secret"
        plain.stop()
    finally:
        zk.stop()
        zk.close()


def test_the_secure_port_refuses_a_client_that_does_not_trust_the_cluster_ca(zk_ensemble):
    # Without the cluster's CA the server's certificate cannot be verified: the handshake fails.
    context = ssl.create_default_context()
    context.check_hostname = False
    host, port = zk_ensemble.secure_connect_string.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            with context.wrap_socket(raw, server_hostname=host):
                pass
