"""The explorer's web application: a JSON API over :mod:`interp.explore.queries` and the page that uses it.

    >>> from interp.explore import Entry, Registry, create_app
    >>> from fastapi.testclient import TestClient
    >>> from models.transformer import Transformer, TransformerConfig
    >>> from models.transformer.tokenizer import CharTokenizer
    >>> tokenizer = CharTokenizer.from_corpus("abcdefgh ijklmnop")
    >>> cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=tokenizer.d_vocab, n_ctx=32)
    >>> tiny = lambda: Transformer(cfg, tokenizer=tokenizer)
    >>> client = TestClient(create_app(Registry({"tiny": Entry(tiny)})))
    >>> client.post("/api/prompt", json={"model": "tiny", "prompt": "abc"}).json()["tokens"]
    ['<bos>', 'a', 'b', 'c']
    >>> client.post("/api/prompt", json={"model": "nope", "prompt": "abc"}).status_code
    404

Routes (bodies are JSON; every error is ``{"error": "what to change"}`` with a 4xx status):

- ``GET /`` the page; ``GET /api/models``; ``GET /api/limits``; ``GET /openapi.json`` the schema.
- ``POST /api/prompt`` ``{model, prompt, k=10}``: ``tokens``, ``top_k`` (per position), ``attention``
  (``patterns[layer][head][query][key]``), ``lens`` (top token and probability per layer and position).
- ``POST /api/attention`` ``{model, prompt, layer=null, head=null}``: ``patterns[layer][head][query][key]``
  of one layer and head (or all).
- ``POST /api/neurons`` ``{model, prompt, position=-1, k=10, target=null, rank_by="dla"}``.
- ``POST /api/patch`` ``{model, clean, corrupted, activation="resid_pre", answer=null, wrong=null}``:
  ``values[layer][pos]``.
- ``POST /api/trace`` ``{model, prompt, subject | subject_start+subject_stop, kind="mlp", samples=3,
  window=min(10, n_layers), answer=null, seed=0}``: ``values[layer][pos]``.

One request at a time runs on each model (its lock); hooks are checked to be gone after each.
The interactive API docs FastAPI usually serves at ``/docs`` are off: they load from a CDN.
"""

import logging
from importlib import resources
from typing import Any, Callable, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from interp.explore import queries
from interp.explore.errors import BadRequest
from interp.explore.queries import Limits
from interp.explore.subjects import Registry, Subject

log = logging.getLogger("interp.explore")
MAX_PROMPT_CHARS = 2000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="a name from GET /api/models")


class PromptBody(Body):
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    k: int = 10


class AttentionBody(Body):
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    layer: Optional[int] = None
    head: Optional[int] = None


class NeuronBody(Body):
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    position: Optional[int] = None
    k: int = 10
    target: Optional[str] = Field(default=None, max_length=100)
    rank_by: str = "dla"


class PatchBody(Body):
    clean: str = Field(max_length=MAX_PROMPT_CHARS)
    corrupted: str = Field(max_length=MAX_PROMPT_CHARS)
    activation: str = "resid_pre"
    answer: Optional[str] = Field(default=None, max_length=100)
    wrong: Optional[str] = Field(default=None, max_length=100)


class TraceBody(Body):
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    subject: Optional[str] = Field(default=None, max_length=MAX_PROMPT_CHARS)
    subject_start: Optional[int] = None
    subject_stop: Optional[int] = None
    kind: str = "mlp"
    samples: int = 3
    window: Optional[int] = None  # ROME's 10, or every layer of a smaller model
    answer: Optional[str] = Field(default=None, max_length=100)
    seed: int = 0


def create_app(registry: Registry, limits: Limits = Limits()) -> FastAPI:
    """The explorer over the models of ``registry``."""
    app = FastAPI(title="interp explorer", docs_url=None, redoc_url=None,
                  description="Probe hooked models: tokens, attention, the logit lens, neurons, patching, tracing.")
    static = resources.files("interp.explore") / "static"

    def run(name: str, query: Callable[[Subject], dict[str, Any]]) -> dict[str, Any]:
        subject = registry.get(name)
        with subject.lock:
            try:
                return query(subject)
            finally:
                left = subject.hooks_left()
                if left:  # a bug in an instrument: never let it reach the next request
                    log.error("%d hooks were left on %s after a request; removed", left, name)
                    subject.model.reset_hooks(including_permanent=False)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, error: BadRequest) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return JSONResponse({"error": "the request body is not valid JSON: send an object such as "
                                          '{"model": "...", "prompt": "..."}'}, status_code=400)
        return JSONResponse({"error": "; ".join(_describe(p) for p in problems)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{error.detail}: {request.method} {request.url.path}"},
                            status_code=error.status_code)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        log.exception("explorer bug on %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(error).__name__}: {error}); this is a bug in interp, "
                                      f"please report it with the request that caused it"}, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    def page() -> Response:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.get("/static/{name}")
    def asset(name: str) -> Response:
        show = resources.files("interp.show")  # the notebook views' renderers, shared with the page
        files = {"explorer.js": static / "explorer.js", "explorer.css": static / "explorer.css",
                 "views.js": show / "views.js", "views.css": show / "views.css"}
        if name not in files:
            raise BadRequest(f"no such file {name!r}", status=404)
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(str(files[name]), media_type=kind)

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        return {"models": registry.info()}

    @app.get("/api/limits")
    def get_limits() -> dict[str, Any]:
        return {**limits.as_dict(), "max_prompt_chars": MAX_PROMPT_CHARS}

    @app.post("/api/prompt")
    def prompt(body: PromptBody) -> dict[str, Any]:
        return run(body.model, lambda s: queries.prompt_view(s, body.prompt, body.k, limits))

    @app.post("/api/attention")
    def attention(body: AttentionBody) -> dict[str, Any]:
        return run(body.model, lambda s: queries.attention_view(s, body.prompt, body.layer, body.head, limits))

    @app.post("/api/neurons")
    def neurons(body: NeuronBody) -> dict[str, Any]:
        return run(body.model, lambda s: queries.neuron_view(s, body.prompt, body.position, body.k, body.target,
                                                             body.rank_by, limits))

    @app.post("/api/patch")
    def patch(body: PatchBody) -> dict[str, Any]:
        return run(body.model, lambda s: queries.patching_view(s, body.clean, body.corrupted, body.activation,
                                                               body.answer, body.wrong, limits))

    @app.post("/api/trace")
    def trace(body: TraceBody) -> dict[str, Any]:
        given = (body.subject_start, body.subject_stop)
        if (given[0] is None) != (given[1] is None):
            raise BadRequest("give both subject_start and subject_stop (a token span [start, stop))", status=422)
        span = None if given[0] is None else (body.subject_start, body.subject_stop)
        return run(body.model, lambda s: queries.tracing_view(s, body.prompt, body.subject, span, body.kind,
                                                              body.samples, body.window, body.answer, body.seed,
                                                              limits))

    return app


def _describe(problem: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
    if problem.get("type") == "missing":
        return f"{where!r} is missing"
    if problem.get("type") == "extra_forbidden":
        return f"{where!r} is not a field of this request"
    return f"{where!r}: {problem.get('msg', 'invalid')}"
