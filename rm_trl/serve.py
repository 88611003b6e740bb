"""A reward server for PPO pipelines that call a remote reward model (FastAPI + uvicorn).

Endpoints:
- `GET /health`: status and what the model is;
- `POST /get_reward`: OpenRLHF's shape, `{"query": [full texts], "prompts": [optional]}` -> `{"rewards": [...]}`;
- `POST /score`: `{"prompts": [...], "responses": [...]}` -> `{"rewards": [...]}`.

Concurrent requests are gathered for a few milliseconds and scored in one length-sorted batch (`RewardScorer`,
the same tokenization as training). Bodies larger than `max_body_bytes` get 413, more than `max_items` texts 413,
malformed bodies 422 with the reason; the server binds to localhost unless told otherwise.
"""

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request  # the `serve` extra; FastAPI needs these types at import time
from fastapi.responses import JSONResponse

from .scoring import RewardScorer

logger = logging.getLogger(__name__)


@dataclass
class ServerSettings:
    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    normalize: bool = False
    batch_tokens: int = 16384
    max_batch_wait_ms: float = 5.0
    max_batch_items: int = 512
    max_items: int = 256
    max_body_bytes: int = 8 * 1024 * 1024
    max_text_chars: int = 100_000
    trust_remote_code: bool = False


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class MicroBatcher:
    """Gathers concurrent scoring requests and scores them together in a worker thread."""

    def __init__(self, scorer: RewardScorer, max_wait_ms: float, max_items: int):
        self.scorer, self.max_wait, self.max_items = scorer, max_wait_ms / 1000.0, max_items
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def score(self, prompts: list[str], responses: list[str]) -> list[float]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((prompts, responses, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            count = len(jobs[0][0])
            deadline = loop.time() + self.max_wait
            while count < self.max_items:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                count += len(job[0])
            prompts = [p for job in jobs for p in job[0]]
            responses = [r for job in jobs for r in job[1]]
            try:
                rewards = await asyncio.to_thread(self.scorer.score_texts, prompts, responses)
            except Exception as exc:  # a bad text fails its batch; answer each request on its own
                for job_prompts, job_responses, future in jobs:
                    await self._score_alone(job_prompts, job_responses, future, exc)
                continue
            start = 0
            for job_prompts, _, future in jobs:
                if not future.done():
                    future.set_result([float(r) for r in rewards[start : start + len(job_prompts)]])
                start += len(job_prompts)

    async def _score_alone(self, prompts, responses, future, batch_error: Exception) -> None:
        try:
            rewards = await asyncio.to_thread(self.scorer.score_texts, prompts, responses)
            if not future.done():
                future.set_result([float(r) for r in rewards])
        except Exception as exc:
            if not future.done():
                future.set_exception(RequestError(422, f"cannot score this request: {exc}"))


def _strip_special(text: str, tokens: list[str]) -> str:
    """Drop trailing pad / EOS strings left by generation (the model's own EOS rule adds EOS back)."""
    changed = True
    while changed:
        changed = False
        stripped = text.rstrip()
        for token in tokens:
            if token and stripped.endswith(token):
                text, changed = stripped[: -len(token)], True
    return text


def create_app(scorer: RewardScorer, settings: ServerSettings) -> FastAPI:
    batcher = MicroBatcher(scorer, settings.max_batch_wait_ms, settings.max_batch_items)
    specials = [t for t in (scorer.tokenizer.eos_token, scorer.tokenizer.pad_token) if t]

    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="rm-trl reward server", lifespan=lifespan)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and int(length) > settings.max_body_bytes:
            return JSONResponse({"error": f"request body over {settings.max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    async def read_json(request: Request) -> dict[str, Any]:
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            raise RequestError(413, f"request body over {settings.max_body_bytes} bytes")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise RequestError(422, f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RequestError(422, "body must be a JSON object")
        return data

    def text_list(data: dict[str, Any], key: str, required: bool = True) -> list[str] | None:
        value = data.get(key)
        if value is None:
            if required:
                raise RequestError(422, f"missing field {key!r}")
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RequestError(422, f"field {key!r} must be a list of strings")
        if not value:
            raise RequestError(422, f"field {key!r} is empty")
        if len(value) > settings.max_items:
            raise RequestError(413, f"{len(value)} items in {key!r}; at most {settings.max_items} per request")
        for i, text in enumerate(value):
            if len(text) > settings.max_text_chars:
                raise RequestError(413, f"{key}[{i}] is over {settings.max_text_chars} characters")
        return value

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.get("/health")
    async def health():
        meta = scorer.metadata
        return {
            "status": "ok",
            "model": settings.model,
            "family": meta.get("family"),
            "max_length": scorer.max_length,
            "normalize": settings.normalize,
        }

    @app.post("/score")
    async def score(request: Request):
        data = await read_json(request)
        responses = text_list(data, "responses")
        prompts = text_list(data, "prompts", required=False) or [""] * len(responses)
        if len(prompts) != len(responses):
            raise RequestError(422, f"{len(prompts)} prompts for {len(responses)} responses")
        return {"rewards": await _score(prompts, responses)}

    @app.post("/get_reward")
    async def get_reward(request: Request):
        data = await read_json(request)
        queries = [_strip_special(q, specials) for q in text_list(data, "query")]
        prompts = text_list(data, "prompts", required=False)
        if prompts is not None and len(prompts) != len(queries):
            raise RequestError(422, f"{len(prompts)} prompts for {len(queries)} queries")
        pairs = []
        for i, query in enumerate(queries):
            prompt = prompts[i] if prompts is not None and query.startswith(prompts[i]) else ""
            pairs.append((prompt, query[len(prompt) :]))
        rewards = await _score([p for p, _ in pairs], [r for _, r in pairs])
        return {"rewards": rewards, "scores": rewards}

    async def _score(prompts: list[str], responses: list[str]) -> list[float]:
        empty = [i for i, r in enumerate(responses) if not r.strip()]
        if empty:
            raise RequestError(422, f"responses {empty[:10]} are empty")
        return await batcher.score(prompts, responses)

    return app


def wait_until_healthy(base_url: str, timeout: float = 120.0) -> None:
    """Poll `GET /health` until the server answers (for scripts and tests that start one)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"no healthy reward server at {base_url} after {timeout:.0f} s")


def run_server(settings: ServerSettings) -> None:
    import uvicorn

    scorer = RewardScorer.from_pretrained(
        settings.model,
        normalize=settings.normalize,
        batch_tokens=settings.batch_tokens,
        trust_remote_code=settings.trust_remote_code,
    )
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("Serving on %s: reachable from other machines", settings.host)
    uvicorn.run(create_app(scorer, settings), host=settings.host, port=settings.port, log_level="warning")
