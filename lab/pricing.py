"""On-demand prices, for `plan` and `status`. A table, with its date: prices change.

Source: AWS public on-demand price pages (Linux, shared tenancy), read 2024-10.
Public IPv4 addresses are charged since 2024-02 at 0.005 USD per hour each.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2024-10"
HOURS_PER_MONTH = 730
IPV4_PER_HOUR = 0.005

# USD per instance-hour.
INSTANCE_PER_HOUR = {
    "ap-northeast-2": {
        "t3.medium": 0.052,
        "t3.large": 0.104,
        "t3.xlarge": 0.208,
        "t3a.medium": 0.0468,
        "t3a.large": 0.0936,
        "t3a.xlarge": 0.1872,
        "m5.large": 0.118,
        "m6i.large": 0.118,
    },
    "us-east-1": {
        "t3.medium": 0.0416,
        "t3.large": 0.0832,
        "t3.xlarge": 0.1664,
        "t3a.medium": 0.0376,
        "t3a.large": 0.0752,
        "t3a.xlarge": 0.1504,
        "m5.large": 0.096,
        "m6i.large": 0.096,
    },
}
# USD per GB-month of gp3.
GP3_PER_GB_MONTH = {"ap-northeast-2": 0.0912, "us-east-1": 0.08}
FALLBACK_REGION = "ap-northeast-2"


@dataclass
class Cost:
    instances: float
    ipv4: float
    volumes: float
    region_used: str

    @property
    def per_hour(self) -> float:
        return self.instances + self.ipv4 + self.volumes


def hourly_cost(region: str, instance_type: str, nodes: int = 4, volume_gb: int = 30) -> Cost | None:
    """The lab's hourly cost, or None when the instance type is not in the table."""
    table_region = region if region in INSTANCE_PER_HOUR else FALLBACK_REGION
    per_instance = INSTANCE_PER_HOUR[table_region].get(instance_type)
    if per_instance is None:
        return None
    gp3 = GP3_PER_GB_MONTH[table_region] * volume_gb / HOURS_PER_MONTH
    return Cost(per_instance * nodes, IPV4_PER_HOUR * nodes, gp3 * nodes, table_region)
