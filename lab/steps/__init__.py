"""The `up` pipeline: its steps in order, and which steps each one needs finished first.

Each step is idempotent: a re-run resumes where the last one stopped. Steps that do not need
each other overlap; the list order is the order of `--until` and of the summary.
"""

from lab.steps.addons import Addons
from lab.steps.base import Step, Stopped, UpContext
from lab.steps.cloudinit import CloudInit
from lab.steps.istio import Istio, Istioctl
from lab.steps.k3s import NodesReady
from lab.steps.keypair import KeyPair
from lab.steps.netshoot import Netshoot
from lab.steps.preflight import Preflight
from lab.steps.ssh import Ssh
from lab.steps.stack import Stack

STEPS: tuple[Step, ...] = (
    Preflight(),
    KeyPair(),
    Stack(),
    Ssh(),
    CloudInit(),
    NodesReady(),
    Istioctl(),
    Istio(),
    Addons(),
    Netshoot(),
)
STEP_NAMES = tuple(step.name for step in STEPS)

# What each step needs finished before it starts (its `done` check runs then). Steps also wait
# inside their work for what they need only part-way: istio installs once the nodes are Ready;
# addons applies once Istio has created istio-system, then waits for its own pods; netshoot pulls
# its images on the nodes while Istio installs, and creates the pods once istiod (the sidecar
# injector) is ready.
NEEDS: dict[str, tuple[str, ...]] = {
    "preflight": (),
    "key-pair": ("preflight",),
    "stack": ("key-pair",),
    "ssh": ("stack",),
    "cloud-init": ("ssh",),
    "nodes-ready": ("cloud-init",),
    "istioctl": ("ssh",),  # only SSH to k3s-s: the download overlaps cloud-init
    "istio": ("cloud-init", "istioctl"),  # then waits for nodes-ready before it installs
    "addons": ("cloud-init", "istioctl"),  # its manifests come in the istioctl release
    "netshoot": ("cloud-init",),  # pulls at once; then waits for nodes-ready, and for istio
}

__all__ = ["NEEDS", "STEPS", "STEP_NAMES", "Step", "Stopped", "UpContext"]
