"""Entry point of every simulated executable on the nodes (see tools/).

Each invocation appends one line to the command log when it ends, whatever the outcome.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import time
import traceback

from . import log
from .config import SERVER, Layout

# tool -> (module, function); modules load lazily so each call imports only what it needs
TOOLS = {
    "kubectl": ("kubectl", "main"),
    "istioctl": ("istioctl", "main"),
    "cloud-init": ("node_tools", "cloud_init"),
    "sudo": ("node_tools", "sudo"),
    "journalctl": ("node_tools", "journalctl"),
    "boot-script": ("node_tools", "boot_script"),
    "curl": ("release", "curl"),
    "crictl": ("node_tools", "crictl"),
}
RECORDED_ENV = ("KUBECONFIG", "LABSIM_ISTIO_VERSION")


class Context:
    """What a tool knows: its node, the workdir, the simulator's settings, its stdin if read."""

    def __init__(self, tool: str, argv: list[str]) -> None:
        self.layout = Layout.from_env()
        self.node = os.environ.get("LABSIM_NODE", "?")
        self.config = self.layout.load_config()
        self.tool = tool
        self.argv = argv
        self.stdin_text: str | None = None

    def read_stdin(self) -> str:
        if self.stdin_text is None:
            self.stdin_text = sys.stdin.read()
        return self.stdin_text

    def entry(self, started: float, exit_code: int) -> dict:
        env = {name: os.environ[name] for name in RECORDED_ENV if name in os.environ}
        return {
            "ts": started,
            "ended": time.time(),
            "node": self.node,
            "tool": self.tool,
            "argv": self.argv,
            "stdin": self.stdin_text,
            "exit": exit_code,
            "env": env,
        }


def _exit_on_signal(signum: int, _frame: object) -> None:
    # what a shell reports for a command killed by signal N (bash(1), EXIT STATUS: 128+N)
    raise SystemExit(128 + signum)


def _drop_session_if_asked(ctx: Context, started: float) -> None:
    """Fault `sshd_restart_on`: the first matching command on k3s-s loses its SSH session."""
    needle = ctx.config.faults.sshd_restart_on
    if not needle or ctx.node != SERVER or needle not in " ".join(ctx.argv):
        return
    ctx.layout.requests_dir.mkdir(exist_ok=True)
    try:
        fd = os.open(ctx.layout.requests_dir / "sshd-restart-fired", os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return
    os.close(fd)
    log.record(ctx.layout.log_file, ctx.entry(started, 255))
    (ctx.layout.requests_dir / f"restart-{ctx.node}").touch()
    # The watcher kills sshd and every session process, this one included.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    time.sleep(10)
    os._exit(255)


def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    ctx = Context(tool, [tool, *args])
    started = time.time()
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _exit_on_signal)
    code = 70
    try:
        _drop_session_if_asked(ctx, started)
        module_name, function = TOOLS[tool]
        module = importlib.import_module(f"{__package__}.{module_name}")
        code = getattr(module, function)(ctx, args)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BrokenPipeError:
        code = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader went away
    except Exception:
        traceback.print_exc()
        print(f"labsim: internal error in simulated {tool}", file=sys.stderr)
    finally:
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.flush()
        log.record(ctx.layout.log_file, ctx.entry(started, code))
    return code
