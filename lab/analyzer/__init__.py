"""Offline Istio egress analyzer (`invoke analyze`) and path explainer (`invoke explain`).

It knows the lab `invoke up` builds (see inventory.yaml), so it can tell, before anything is
applied, which resources Istio will ignore and where a request will really go.
"""

from lab.analyzer.engine import analyze_documents, analyze_paths
from lab.analyzer.findings import Finding, has_errors
from lab.analyzer.inventory import Inventory, load_default
from lab.analyzer.predict import predict

__all__ = [
    "Finding",
    "Inventory",
    "analyze_documents",
    "analyze_paths",
    "has_errors",
    "load_default",
    "predict",
]
