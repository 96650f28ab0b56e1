"""The AWS side: a moto server on loopback, reset and seeded with what moto lacks."""

from __future__ import annotations

import logging
import urllib.request

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.ssm.models import Parameter, ssm_backends

from . import moto_fixes

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Public SSM parameters the template may resolve for its AMI; moto does not ship Canonical's. The
# path is the one Canonical publishes (documentation.ubuntu.com/aws, "Find Ubuntu images":
# /aws/service/canonical/ubuntu/server/<release>/stable/current/<arch>/hvm/ebs-gp2/ami-id).
UBUNTU_AMI_PARAMETERS = tuple(
    f"/aws/service/canonical/ubuntu/server/22.04/stable/current/{arch}/hvm/ebs-gp2/ami-id"
    for arch in ("amd64", "arm64")
)


class _MotoThread(ThreadedMotoServer):
    """moto's threaded server, polling for shutdown every 50 ms instead of every 500 ms."""

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        self._server = make_server(
            self._ip_address, self._port, DomainDispatcherApplication(create_backend_app), True
        )
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.05)


class MotoServer:
    def __init__(self, region: str) -> None:
        self.region = region
        self._server: _MotoThread | None = None
        self.endpoint = ""
        self._clients: dict = {}

    def start(self) -> None:
        moto_fixes.apply()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = _MotoThread(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        _, port = self._server.get_host_and_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        # moto's backends live in this process: start from nothing, whatever ran before
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        self._seed()

    def client(self, service: str):
        """One client per service, shared (boto3 clients are thread-safe; creating one is slow)."""
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(
                service, endpoint_url=self.endpoint, region_name=self.region, **CREDENTIALS
            )
        return self._clients[service]

    def _seed(self) -> None:
        ec2 = self.client("ec2")
        # filtered: moto's full image list takes a second to serialise
        images = (
            ec2.describe_images(Filters=[{"Name": "name", "Values": ["*ubuntu*"]}])["Images"]
            or ec2.describe_images()["Images"]
        )
        image_id = images[0]["ImageId"]
        # AWS reserves /aws/ names, so the API refuses them: write into moto's backend instead.
        parameters = ssm_backends[DEFAULT_ACCOUNT_ID][self.region]._parameters
        for name in UBUNTU_AMI_PARAMETERS:
            parameters[name].append(
                Parameter(
                    account_id=DEFAULT_ACCOUNT_ID,
                    name=name,
                    value=image_id,
                    parameter_type="String",
                    description=None,
                    allowed_pattern=None,
                    keyid=None,
                    last_modified_date=None,
                    version=1,
                    data_type="aws:ec2:image",
                )
            )

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        inner = getattr(self._server, "_server", None)
        if inner is not None:
            inner.server_close()  # moto's stop() leaves the listening socket open
        self._server = None
        self._clients.clear()
