"""One server: the web page (Gradio) and the HTTP API (FastAPI) side by side, on one assistant.

The page asks for a login whenever accounts exist or the server listens beyond this machine; the
local one-person default (127.0.0.1, no accounts) opens straight into the chat.
"""
from __future__ import annotations

import logging

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request

from kme_chat.accounts import Accounts
from kme_chat.assistant import Assistant
from kme_chat.config import Settings

from .api import build_api, error_response, install_error_handlers
from .ui import build

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(settings: Settings, assistant: Assistant | None = None) -> FastAPI:
    assistant = assistant or Assistant.open(settings)
    accounts = Accounts(settings.data_path / "users.sqlite3")
    app = FastAPI(title="kme-chat", docs_url=None, redoc_url=None)
    install_error_handlers(app)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # logged here; the caller gets no internals
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, "internal error: the request was not completed", "server_error")

    app.include_router(build_api(assistant, accounts))
    login_needed = accounts.any() or settings.host not in LOOPBACK
    if login_needed and not accounts.any():
        log.warning("listening on %s with no accounts: add one with `kme-chat users add NAME`", settings.host)

    def check(name: str, password: str) -> bool:
        return accounts.check_password(name, password) is not None

    demo = build(assistant, accounts if login_needed else None)
    demo.queue(default_concurrency_limit=4)
    return gr.mount_gradio_app(app, demo, path="/", auth=check if login_needed else None,
                               auth_message="Sign in with your kme-chat account.", footer_links=[],
                               show_error=True)


def serve(settings: Settings) -> None:
    app = create_app(settings)
    print(f"kme-chat serving on http://{settings.host}:{settings.port} (web page at /, API at /v1)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
