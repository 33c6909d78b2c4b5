"""Forward hooks that only act for the thread that set them: other users' chats run the same
modules meanwhile and must not see an edit being computed."""
from __future__ import annotations

import contextlib
import threading


@contextlib.contextmanager
def thread_hook(module, fn, kind: str = "forward"):
    owner = threading.get_ident()

    def hook(mod, args, output=None):
        if threading.get_ident() != owner:
            return None
        return fn(mod, args, output) if kind == "forward" else fn(mod, args)

    handle = module.register_forward_hook(hook) if kind == "forward" else module.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()
