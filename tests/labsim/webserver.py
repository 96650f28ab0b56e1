"""testpc's web server: Ubuntu 22.04's nginx, there when the template's user data installs it.

It answers HTTP on port 80 of testpc's private address and appends each request to
/var/log/nginx/access.log (under the node's private root, where the simulated `sudo` reads it) in
nginx's predefined `combined` format (nginx docs, ngx_http_log_module: `$remote_addr - $remote_user
[$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`; Ubuntu's
/etc/nginx/nginx.conf logs to that file with no format named, so `combined`). $time_local is the
host's local time, UTC on Ubuntu's EC2 images.

$remote_addr is the address the connection came from as testpc sees it. A pod's connection to an
address outside the cluster leaves its node masqueraded to the node's own address: k3s's embedded
flannel installs the masquerade rules for traffic from the pod network to outside it (k3s-io/k3s
pkg/agent/flannel/flannel.go sets up flannel's ipmasq, flannel-io/flannel pkg/trafficmngr/iptables:
IPTablesManager.SetupAndEnsureMasqRules in pkg/trafficmngr/iptables: traffic from the pod network
to anywhere outside it is MASQUERADEd). So testpc logs the node of the pod that opened the connection:
the client's own node when its sidecar goes direct, the egress gateway's node through the gateway.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cluster import State

NODE = "testpc"
ACCESS_LOG = "var/log/nginx/access.log"
PORT = 80
# Ubuntu's nginx package (nginx-common 1.18.0-6ubuntu14): /var/www/html/index.nginx-debian.html.
DEFAULT_PAGE = """\
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
    body {
        width: 35em;
        margin: 0 auto;
        font-family: Tahoma, Verdana, Arial, sans-serif;
    }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""
_INSTALLS_NGINX = re.compile(r"apt-get\b[^\n]*\binstall\b[^\n]*\bnginx\b")


def address(state: State) -> str | None:
    info = state.node_info(NODE)
    return info.get("private_ip") if info else None


def installed(state: State) -> bool:
    """nginx runs when testpc's user data installs the package (its postinst starts the service)."""
    user_data = state.layout.node_root(NODE) / "var/lib/cloud/instance/user-data.txt"
    try:
        return bool(_INSTALLS_NGINX.search(user_data.read_text()))
    except OSError:
        return False


def node_address(state: State, pod: dict) -> str:
    """The address a pod's connection to outside the cluster comes from: its node's (masquerade)."""
    info = state.node_info(pod["spec"].get("nodeName", "")) or {}
    return info.get("private_ip", "")


def serve(state: State, source: str, method: str, target: str, user_agent: str) -> tuple[int, str]:
    """Answer one request (status, body) and log it as nginx does."""
    status, body = 200, DEFAULT_PAGE
    if method == "HEAD":
        body = ""
    stamp = datetime.fromtimestamp(state.now, timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
    line = f'{source} - - [{stamp}] "{method} {target} HTTP/1.1" {status} {len(body.encode())} "-" "{user_agent}"\n'
    log = state.layout.node_root(NODE) / ACCESS_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as file:
        file.write(line)
    return status, body
