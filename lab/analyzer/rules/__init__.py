"""The checks, one small module per theme. Importing this package registers them all."""

from lab.analyzer.rules import (  # noqa: F401  (imported to register their rules)
    envoyfilters,
    gateways,
    installed,
    routing,
    structure,
    subsets,
    tls,
)
