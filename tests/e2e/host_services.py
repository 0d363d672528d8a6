"""The servers pods call, on this machine: the Snowflake emulator, moto's S3 and the mTLS
service. Each listens on the cluster's bridge address (never 0.0.0.0), the only address
of this machine that pods reach; the mTLS service's certificate names that address."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from snowflake_devtools.certificates import DemoCertificates, write_demo_certificates
from snowflake_devtools.mtls_service import fetch_stats, start_mtls_service
from snowflake_devtools.processes import start_snowflake_emulator
from snowflake_worker.constants import CA_CERT, CLIENT_CERT, CLIENT_KEY
from tests.support.s3 import s3_client, upload, versioned_bucket
from tests.support.snowflake import connect_to_emulator


@dataclass
class HostServices:
    address: str
    snowflake_port: int
    s3_endpoint: str
    service_port: int
    certs: DemoCertificates

    @property
    def service_url(self) -> str:
        return f"https://{self.address}:{self.service_port}/process"

    def snowflake(self, **overrides: Any) -> Any:
        """A connector connection to the emulator, as the host sees it."""
        return connect_to_emulator(self.snowflake_port, host=self.address, **overrides)

    def service_stats(self) -> dict[str, Any]:
        return fetch_stats(self.service_port, self.certs, host=self.address)

    def certificates_bucket(self) -> str:
        """A versioned bucket holding the demo client's certificates under prod/."""
        s3 = s3_client(self.s3_endpoint)
        bucket = versioned_bucket(s3)
        client = self.certs.client_dir
        upload(s3, bucket, {name: (client / name).read_bytes() for name in CERT_NAMES})
        return bucket


CERT_NAMES = (CLIENT_CERT, CLIENT_KEY, CA_CERT)


@contextmanager
def host_services(address: str, root: Path, latency_ms: float = 20) -> Iterator[HostServices]:
    with ExitStack() as stack:
        snowflake = start_snowflake_emulator(
            root / "snowflake", root / "snowflake.log", host=address
        )
        stack.callback(snowflake.stop)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto = ThreadedMotoServer(ip_address=address, port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        certs = write_demo_certificates(root / "certs", extra_server_hosts=(address,))
        service = start_mtls_service(
            certs, root / "mtls-service.log", latency_ms=latency_ms, host=address
        )
        stack.callback(service.stop)
        yield HostServices(address, snowflake.port, f"http://{host}:{port}", service.port, certs)
