"""lab: a reproducible lab for studying Istio egress on a k3s cluster in AWS."""

__version__ = "0.1.0"
TOOLKIT = "istio-egress-lab"
