"""Papermill's ``mnistkit`` engine: papermill's own engine with the kernel on IPC sockets.

By default a Jupyter kernel listens on TCP ports of localhost, and ipykernel warns on every start
that this traffic is unencrypted. Over IPC (Unix domain sockets, in Jupyter's runtime folder, only
this user can open them) nothing travels over the network and there is nothing to warn about.
The sockets' files go to Jupyter's runtime folder, never the working folder (jupyter_client's
default for IPC is ``kernel-ipc-<port>`` in the working folder, when no connection file is named
yet), and are removed when the kernel shuts down.
Chosen with ``papermill --engine mnistkit`` (registered by ``pip install -e .``); build.sh uses it.
"""

from __future__ import annotations

import os
import uuid

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from papermill.engines import NBClientEngine


class IpcKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels talk over Unix domain sockets (TCP where there are none)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc" if os.name == "posix" else "tcp")
        if kwargs["transport"] == "ipc" and "ip" not in kwargs:
            os.makedirs(jupyter_runtime_dir(), exist_ok=True)
            kwargs["ip"] = os.path.join(jupyter_runtime_dir(), f"kernel-{uuid.uuid4()}-ipc")
        super().__init__(**kwargs)


def title(nb) -> str | None:
    """The report's title: the first level-1 heading among the executed notebook's Markdown outputs (the
    report writes it, with its dataset, in its header), or None."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/markdown", "")
            first = text.lstrip().splitlines()[0] if text.strip() else ""
            if first.startswith("# "):
                return first[2:].strip()
    return None


class Engine(NBClientEngine):
    """papermill's nbclient engine, starting its kernel with ``IpcKernelManager``; the executed notebook's
    title (the HTML page's) becomes the report's own, which names its dataset."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        kwargs.setdefault("kernel_manager_class", IpcKernelManager)
        out = super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
        found = title(nb_man.nb)
        if found:
            nb_man.nb.metadata["title"] = found
        return out
