"""The `up` pipeline, in order. Each step is idempotent: a re-run resumes where the last one stopped."""

from lab.steps.addons import Addons
from lab.steps.base import Step, UpContext
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

__all__ = ["STEPS", "STEP_NAMES", "Step", "UpContext"]
