"""The HTTP API, OpenAI-style, on the same server as the web page.

    POST /v1/chat/completions   the chat, with the caller's memory (stream: server-sent events)
    GET  /v1/models
    POST /v1/edits              {"question", "correction", "answer"?, "weights"?, "preview"?}
    GET  /v1/edits              the caller's edits (and the shared and weight edits that affect them)
    DELETE /v1/edits/{id}       undo
    POST /v1/edits/{id}/share   {"shared": true|false}: an admin puts a memory edit in everyone's memory
    GET  /v1/edits/{id}/history

Every call needs `Authorization: Bearer KEY` (`kme-chat users key NAME`). Errors are JSON
(`{"error": {"message", "type"}}`) with a 4xx status; nothing a caller sends yields a traceback.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from kme_chat.accounts import Accounts, User
from kme_chat.assistant import Assistant
from kme_chat.chat import content_text
from kme_chat.edit_log import Edit
from kme_chat.errors import Forbidden, NotFound, UserError
from kme_chat.model import whole_answer
from kme_chat.router import route_correction

log = logging.getLogger(__name__)
MODEL_ID = "kme-chat"
MAX_MESSAGES = 200


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return error_response(422, "the request body is not what this endpoint takes", "invalid_request_error")


def edit_json(edit: Edit) -> dict:
    return {"id": edit.id, "kind": edit.kind, "subject": edit.subject, "relation": edit.relation,
            "old": edit.target_true, "new": edit.target_new, "question": edit.question, "note": edit.note,
            "condition": edit.condition, "routes": edit.routes, "status": edit.status, "user": edit.user,
            "shared": edit.shared, "created": edit.created, "reverted": edit.reverted, "summary": edit.summary}


async def json_body(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _text(body: dict, name: str, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name!r} must be a string" if value is not None else f"{name!r} is required")
    return value


def build_api(assistant: Assistant, accounts: Accounts) -> APIRouter:
    api = APIRouter(prefix="/v1")

    def caller(request: Request) -> User:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        user = accounts.user_for_key(key.strip()) if scheme.lower() == "bearer" and key.strip() else None
        if user is None:
            raise ApiError(401, "a valid API key is needed: Authorization: Bearer KEY (kme-chat users key NAME)",
                           "authentication_error")
        return user

    def guarded(fn, *args, **kwargs) -> Any:
        """Our errors -> 4xx JSON; anything else is logged and reported without internals."""
        try:
            return fn(*args, **kwargs)
        except Forbidden as exc:
            raise ApiError(403, str(exc), "permission_error") from None
        except NotFound as exc:
            raise ApiError(404, str(exc), "not_found_error") from None
        except UserError as exc:
            raise ApiError(400, str(exc)) from None

    @api.get("/models")
    def models(user: User = Depends(caller)):
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "kme-chat"}]}

    @api.post("/chat/completions")
    async def chat(request: Request, user: User = Depends(caller)):
        body = await json_body(request)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES or \
                not all(isinstance(m, dict) and m.get("role") in ("system", "user", "assistant", "tool", "developer")
                        for m in messages):
            raise ApiError(400, f"'messages' must be a list of 1-{MAX_MESSAGES} {{role, content}} objects")
        if messages[-1]["role"] != "user":
            raise ApiError(400, "the last message must be the user's")
        question = content_text(messages[-1].get("content"))
        history = [{"role": m["role"], "content": content_text(m.get("content"))} for m in messages[:-1]
                   if m["role"] in ("user", "assistant")]  # the system prompt is ours: a caller's is not used
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1024):
            raise ApiError(400, "'max_tokens' must be an integer from 1 to 1024")
        stream = assistant.stream(question, history, user, limit)
        # generation runs in worker threads, never on the server's event loop; bad input is refused
        # at the first piece, before any byte is sent
        first = await run_in_threadpool(guarded, next, stream, "")
        made, cid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if not body.get("stream"):
            answer = await run_in_threadpool(whole_answer, _chain(first, stream))
            return {"id": cid, "object": "chat.completion", "created": made, "model": MODEL_ID,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

        def chunk(delta: dict, finish: str | None = None) -> str:
            return "data: " + json.dumps({"id": cid, "object": "chat.completion.chunk", "created": made,
                                          "model": MODEL_ID, "choices": [{"index": 0, "delta": delta,
                                                                          "finish_reason": finish}]}) + "\n\n"

        def events():
            sent = ""
            yield chunk({"role": "assistant", "content": ""})
            try:
                for text in _chain(first, stream):
                    if text.startswith(sent) and len(text) > len(sent):
                        yield chunk({"content": text[len(sent):]})
                        sent = text
            except Exception:  # the stream has begun: end it cleanly, say why in the log
                log.exception("chat stream failed")
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @api.post("/edits")
    async def add_edit(request: Request, user: User = Depends(caller)):
        return await run_in_threadpool(_add_edit, await json_body(request), user)

    def _add_edit(body: dict, user: User) -> dict:
        question, correction = _text(body, "question"), _text(body, "correction")
        answer = _text(body, "answer", required=False)
        weights = body.get("weights")
        if weights not in (None, "rome", "memit", "alphaedit"):
            raise ApiError(400, "'weights' must be \"rome\", \"memit\", \"alphaedit\" or absent")
        preview = body.get("preview", False)
        if not isinstance(preview, bool):
            raise ApiError(400, "'preview' must be true or false")
        unknown = set(body) - {"question", "correction", "answer", "weights", "preview"}
        if unknown:  # an injected "user" or "owner" is refused, not obeyed
            raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        routed = guarded(route_correction, question, answer, correction, weights)
        result = {"route": routed.route, "reason": routed.reason, "read_by": routed.method,
                  "edit": edit_json(routed.edit) if routed.edit is not None else None, "stored": False}
        if preview or routed.edit is None:
            return result
        if routed.method == "form":
            raise ApiError(400, f"{routed.reason} (the API cannot fill a form: state the subject in the "
                                "correction, or use the page)")
        routed.edit.routes = routed.route
        edit = guarded(assistant.add_edit, routed.edit, None, user)
        return {**result, "edit": edit_json(edit), "stored": True}

    @api.get("/edits")
    def list_edits(user: User = Depends(caller)):
        return {"object": "list", "data": [edit_json(e) for e in assistant.edits(user)]}

    @api.delete("/edits/{edit_id}")
    def undo(edit_id: str, user: User = Depends(caller)):
        return edit_json(guarded(assistant.undo, edit_id, user))

    @api.post("/edits/{edit_id}/share")
    async def share(edit_id: str, request: Request, user: User = Depends(caller)):
        """An admin puts a memory edit into every user's memory ({"shared": true}) or takes it back."""
        shared = (await json_body(request)).get("shared", True)
        if not isinstance(shared, bool):
            raise ApiError(400, "'shared' must be true or false")
        return edit_json(await run_in_threadpool(guarded, assistant.share, edit_id, shared, user))

    @api.get("/edits/{edit_id}/history")
    def history(edit_id: str, user: User = Depends(caller)):
        edit = guarded(assistant.visible_edit, edit_id, user)
        events = [{"at": edit.created, "event": "created", "by": edit.user, "routes": edit.routes}]
        if edit.reverted:
            events.append({"at": edit.reverted, "event": "reverted"})
        return {"id": edit.id, "status": edit.status, "events": events}

    return api


def _chain(first: str, rest):
    yield first
    yield from rest
