"""`python -m tests.labsim serve`: run the lab simulator in the foreground.

Prints `export NAME=value` lines, where its files live, and then `labsim ready`; `eval` the
exports in another shell and run `invoke up` there. Ctrl-C or SIGTERM stops every process the
simulator started. Its files (command log, nodes, the labs' state and scenario reports in
LAB_HOME) are removed on exit unless --workdir names a folder to keep them in.

Needs OpenSSH's sshd (openssh-server) and ssh-keygen (openssh-client); without them it exits 1
at once, saying what to install.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .config import EGRESS_MODES
from .sim import UNSET, LabSim, MissingTool, check_requirements


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m tests.labsim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = cli.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the simulator until Ctrl-C or SIGTERM")
    serve.add_argument(
        "--workdir",
        metavar="DIR",
        help="keep every file here, reports included (default: a temporary folder, removed on exit)",
    )
    serve.add_argument("--lab-home", help="LAB_HOME to export (default: WORKDIR/labhome)")
    serve.add_argument("--egress", choices=EGRESS_MODES, default="gateway")
    serve.add_argument("--region", default="ap-northeast-2")
    for name, default in (
        ("boot", 0.3),
        ("cloud-init", 0.5),
        ("node-ready", 0.5),
        ("istio-ready", 0.5),
        ("pod-ready", 0.3),
    ):
        serve.add_argument(f"--{name}-delay", type=float, default=default, metavar="S")
    serve.add_argument("--ssh-timeout", type=float, metavar="S", help="export LAB_SSH_TIMEOUT")
    serve.add_argument("--ready-timeout", type=float, metavar="S", help="export LAB_READY_TIMEOUT")
    faults = serve.add_argument_group("faults")
    faults.add_argument(
        "--sshd-late",
        action="append",
        default=[],
        metavar="NODE:S",
        help="that node's sshd starts S seconds after boot",
    )
    faults.add_argument(
        "--sshd-restart-on",
        metavar="TEXT",
        help="the first command on k3s-s containing TEXT drops its session and restarts sshd",
    )
    faults.add_argument("--cloud-init-fail", action="append", default=[], metavar="NODE")
    faults.add_argument("--cloud-init-fault", default="always", choices=("always", "transient", "first-instance"))
    faults.add_argument(
        "--kubectl-transient",
        type=int,
        default=0,
        metavar="N",
        help="the first N `kubectl get nodes` are refused",
    )
    faults.add_argument("--istiod-never-ready", action="store_true")
    faults.add_argument("--istioctl-readiness-timeout", type=float, default=5.0, metavar="S")
    return cli


def serve(options: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    try:
        check_requirements()
    except MissingTool as error:
        print(f"labsim: error: {error}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim = LabSim(
        options.workdir,
        egress=options.egress,
        region=options.region,
        lab_home=options.lab_home,
        ssh_timeout=options.ssh_timeout,
        ready_timeout=options.ready_timeout,
        boot_delay=options.boot_delay,
        cloud_init_delay=options.cloud_init_delay,
        node_ready_delay=options.node_ready_delay,
        istio_ready_delay=options.istio_ready_delay,
        pod_ready_delay=options.pod_ready_delay,
        sshd_late=options.sshd_late,
        sshd_restart_on=options.sshd_restart_on,
        cloud_init_fail=options.cloud_init_fail,
        cloud_init_fault=options.cloud_init_fault,
        kubectl_transient=options.kubectl_transient,
        istiod_never_ready=options.istiod_never_ready,
        istioctl_readiness_timeout=options.istioctl_readiness_timeout,
        on_event=lambda message: print(f"labsim: {message}", file=sys.stderr, flush=True),
    )
    with sim:
        print(sim.exports())
        root = sim.layout.root
        kept = "kept after exit" if options.workdir else "removed on exit: pass --workdir DIR to keep them"
        print(f"# files in {root} ({kept}): command log {sim.layout.log_file},")
        print(
            f"#   lab state and scenario reports in LAB_HOME={sim.lab_home}, other labs' nodes in {root / 'labs'}"
        )
        print(f"# unset {' '.join(UNSET)} if set")
        print("labsim ready", flush=True)
        reported = 0
        while not stop.wait(0.2):
            for error in (sim.watcher.errors if sim.watcher else [])[reported:]:
                print(f"labsim: error: {error}", file=sys.stderr, flush=True)
                reported += 1
    print("labsim stopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    return serve(options)


if __name__ == "__main__":
    sys.exit(main())
