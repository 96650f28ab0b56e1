"""After applying a config, a first request that disagrees with explain is sent again while istiod
pushes the config; the last observation is the answer."""

from __future__ import annotations

import io

from rich.console import Console

from lab import verdicts
from lab.progress import Progress
from lab.trace import Target, Trace
from lab.trace.cli import _again_while_pushing


def observed(verdict: str) -> Trace:
    return Trace(Target.parse("https://en.wikipedia.org/"), "default/pod1", verdict, verdict)


def test_a_request_before_the_push_is_sent_again_until_the_prediction_shows() -> None:
    answers = iter([observed(verdicts.PASSTHROUGH), observed(verdicts.EGRESS_GATEWAY)])
    out = io.StringIO()

    result = _again_while_pushing(
        lambda: next(answers),
        observed(verdicts.PASSTHROUGH),
        verdicts.EGRESS_GATEWAY,
        Progress(Console(file=out)),
    )

    assert result.verdict == verdicts.EGRESS_GATEWAY
    assert "observed passthrough, explain predicts egress-gateway" in out.getvalue()
