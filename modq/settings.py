"""One settings object, read from the environment with the prefix ``MODQ_``.

Every default is written once, here, with its unit in its name and a one-line why.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# v2: thresholds calibrated for the default model on its validation split (modq policy calibrate)
_PACKAGED_POLICY = Path(__file__).resolve().parent.parent / "policy" / "policies" / "v2.toml"


class Settings(BaseSettings):
    """Runtime configuration; ``MODQ_<FIELD>`` overrides each field."""

    model_config = SettingsConfigDict(env_prefix="MODQ_", extra="ignore", protected_namespaces=())

    # --- services -------------------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis for the result cache (and default broker)."
    )
    broker_url: str | None = Field(
        None,
        description="Celery broker; defaults to redis_url. amqp://… for RabbitMQ "
        "(docs/rabbitmq.md): results stay in Redis.",
    )
    result_backend_url: str | None = Field(
        None, description="Celery result backend; defaults to a Redis broker_url, else redis_url."
    )
    database_url: str = Field(
        "sqlite:///var/modq.db", description="SQLAlchemy URL; PostgreSQL at scale."
    )

    # --- model ----------------------------------------------------------------------------
    model_dir: Path = Field(
        Path("models/current"), description="Folder with model.onnx, tokenizer.json, manifest.json."
    )
    model_uri: str | None = Field(
        None,
        description="Serve from the registry: models:/NAME@ALIAS (follows alias moves) or "
        "models:/NAME/VERSION (pinned). Unset = serve model_dir.",
    )
    model_poll_interval_s: float = Field(
        30.0,
        ge=0,
        description="How often a worker re-resolves model_uri's alias (0 = never; a "
        "`modq model promote` broadcast wakes it at once anyway).",
    )
    model_breaker_failures: int = Field(
        5,
        ge=0,
        description="Consecutive failed model calls (or loads) that open the model's circuit "
        "breaker (0 = no breaker): a failing model is rested, not called by every retry.",
    )
    model_breaker_window_s: float = Field(
        30.0,
        gt=0,
        description="Those failures count only within this window (a slow drip never opens it).",
    )
    model_probe_interval_s: float = Field(
        5.0,
        gt=0,
        description="While the breaker is open, a tiny inference this often; one that works "
        "closes it (a few seconds: recovery is noticed fast, a probe costs ~1 ms).",
    )
    model_fallback: str = Field(
        "auto",
        pattern="^(auto|cpu|none)$",
        description="While the breaker is open: auto = serve from a CPU copy of the model when "
        "the primary ran on a GPU, else park jobs; cpu = always a CPU copy; none = park jobs "
        "(they retry with ModelCircuitOpen).",
    )
    model_call_timeout_s: float = Field(
        30.0,
        gt=0,
        le=100,
        description="A model call (one batch) that has not returned after this long is hung: "
        "its jobs are retried (ModelHung), the model's breaker opens and /healthz says so "
        "(docs/model-faults.md). Far above the slowest real batch (~1 s on a CPU); at most "
        "100, below the 120 s a job waits for its batch (tasks/pipeline.py).",
    )

    # --- registry -------------------------------------------------------------------------
    mlflow_uri: str = Field(
        "sqlite:///var/mlflow.db",
        description="MLflow tracking + registry store; any MLflow server URL at scale.",
    )
    mlflow_artifact_root: Path = Field(
        Path("var/mlflow-artifacts"),
        description="Where registered model files go (set explicitly, else ./mlruns).",
    )
    registry_model_name: str = Field(
        "modq-text", description="Registered model that `modq model build` registers into."
    )
    model_cache_dir: Path = Field(
        Path("var/model-cache"),
        description="Local copies of registered versions whose artifacts are not on this disk.",
    )
    ort_intra_op_threads: int = Field(
        1,
        ge=0,
        description="ONNX Runtime threads per process; 0 = ORT's choice. "
        "On small CPUs several 1-thread processes beat one multi-thread process.",
    )
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$", description="Execution provider.")
    backend: str = Field(
        "onnx",
        pattern="^(onnx|torch)$",
        description="Inference backend: onnx (ONNX Runtime) or torch (PyTorch eager, for "
        "models that do not export; needs the `build` extra).",
    )

    # --- batching -------------------------------------------------------------------------
    max_batch_size: int = Field(32, ge=1, description="Most texts in one model call.")
    max_batch_tokens: int = Field(
        4096, ge=16, description="Token budget of one batch (padded length x rows)."
    )
    max_wait_ms: float = Field(
        5.0, ge=0, description="Longest a queued text waits for company before the batch runs."
    )
    batch_overhead_tokens: int | None = Field(
        None,
        ge=0,
        description="Per-call cost of a model run in token-equivalents, used to cut batches "
        "at the least padded cost; unset = by device (cpu 16, cuda 4096).",
    )
    max_length_tokens: int = Field(256, ge=8, description="Texts are truncated to this.")

    # --- input limits ---------------------------------------------------------------------
    max_content_chars: int = Field(20_000, ge=1, description="Longer content is refused.")
    max_items_per_message: int = Field(1_000, ge=1, description="Cap for moderate_many.")
    max_context_bytes: int = Field(
        65_536,
        ge=2,
        description="A job's context is refused (InvalidContent) when its UTF-8 JSON is longer.",
    )

    # --- cache ----------------------------------------------------------------------------
    cache_ttl_s: int = Field(86_400, ge=1, description="Life of a cached decision in Redis.")
    cache_lru_items: int = Field(10_000, ge=0, description="In-process LRU in front of Redis.")
    cache_key_prefix: str = Field("modq:cache:", description="Namespace of cache keys in Redis.")

    # --- celery ---------------------------------------------------------------------------
    visibility_timeout_s: int = Field(
        3_600,
        ge=1,
        description="Redis redelivers an unacked job after this; must exceed "
        "the longest a prefetched job may wait plus its run time.",
    )
    unacked_restore_interval_s: int = Field(
        10,
        ge=1,
        description="How often a worker sweeps for unacked jobs past the visibility "
        "timeout (those of a lost worker) and puts them back on their queue.",
    )
    queue_look_interval_ms: float = Field(
        10.0,
        gt=0,
        le=60_000,
        description="An idle worker looks at its queues this often for jobs that rang no "
        "doorbell (stock Celery producers, restored jobs); one Redis round trip per look.",
    )
    dead_letters_url: str | None = Field(
        None,
        description="Redis holding the dead-letter queue (docs/dead-letters.md); defaults to "
        "the broker the message came from when it is Redis, else redis_url.",
    )
    dead_letter_max_bytes: int = Field(
        262_144,
        ge=1_024,
        description="A dead-letter entry keeps at most this many bytes of its message (the "
        "rest is cut, and the entry says so, and it cannot be retried): with "
        "dead_letter_max_entries, the store holds at most ~2.6 GB by default; lower either for "
        "a small Redis.",
    )
    dead_letter_max_entries: int = Field(
        10_000,
        ge=1,
        description="The dead-letter queue keeps the newest this many entries (older dropped, "
        "logged): with dead_letter_max_bytes, at most ~2.6 GB by default.",
    )
    dead_letter_max_age_s: int = Field(
        1_209_600,
        ge=60,
        description="Dead-letter entries older than this (default 14 days) are dropped.",
    )
    max_message_bytes: int = Field(
        16_777_216,
        ge=1_024,
        description="A worker refuses a broker item longer than this (bytes, 16 MiB) before "
        "decoding it, and dead-letters it (too_large); above the largest job you send.",
    )
    result_expires_s: int = Field(86_400, ge=60, description="Celery results kept this long.")
    prefetch_multiplier: int = Field(
        1, ge=1, description="Messages reserved per worker slot; low keeps urgent work unblocked."
    )
    worker_threads: int = Field(
        32, ge=1, description="Task threads per worker process: the jobs that can share a batch."
    )
    publish_retry_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="A producer retries a publish this long while the broker refuses "
        "connections (a Redis restart), then raises BrokerUnavailable (docs/redis.md); "
        "60 with RabbitMQ, whose node takes up to 25 s to restart, longer after a crash "
        "(docs/rabbitmq.md).",
    )
    result_store_retry_s: float = Field(
        60.0,
        ge=1,
        le=3_600,
        description="Workers retry storing a result, and callers reading a state, this long "
        "through a result-store outage; .get() reconnects until its own timeout.",
    )
    allow_volatile_broker: bool = Field(
        False,
        description="Let a worker start on a Redis with neither AOF nor RDB (a restart loses "
        "every queued job); off: such a worker refuses to start (docs/redis.md).",
    )
    max_countdown_s: float | None = Field(
        None,
        ge=0,
        description="Longest countdown/ETA a producer may ask for; None = the visibility "
        "timeout (a job held longer is redelivered while it waits, and runs in copies).",
    )

    # --- retries and the storage breaker (docs/storage-faults.md) ---------------------------
    retry_budget_s: float = Field(
        600.0,
        gt=0,
        description="A job failing with a retryable error (StorageUnavailable, "
        "ModelUnavailable) is retried for at least this long before it ends FAILURE: the "
        "outage a job outlives (jittered delays never add up to less).",
    )
    retry_delay_base_s: float = Field(
        1.0, gt=0, description="Nominal delay before the first retry; doubles each retry."
    )
    retry_delay_max_s: float = Field(
        60.0,
        gt=0,
        description="Longest nominal delay between two retries (the doubling stops here); "
        "must stay far below visibility_timeout_s.",
    )
    storage_breaker_failures: int = Field(
        5,
        ge=0,
        description="Consecutive storage failures (database down) that open the worker's "
        "storage breaker: it stops consuming until the database answers; 0 = no breaker.",
    )
    storage_breaker_probe_s: float = Field(
        2.0,
        gt=0,
        description="While the storage breaker is open, the database is probed (SELECT 1) "
        "this often; the first answer closes it and the worker consumes again.",
    )

    # --- policy ---------------------------------------------------------------------------
    policy_path: Path = Field(_PACKAGED_POLICY, description="Versioned thresholds (TOML).")

    # --- experiments ----------------------------------------------------------------------
    experiment_refresh_s: float = Field(
        5.0,
        ge=0.1,
        description="How long a worker trusts its copy of the running experiment before "
        "reading it again (`modq ab start/stop` also tell workers at once).",
    )

    # --- privacy ----------------------------------------------------------------------------
    events_show_content: bool = Field(
        False,
        description="Show moderated text and user ids in task events (Flower, `celery events`); "
        "off: events carry content ids, kinds and lengths only.",
    )

    # --- backpressure and metrics ---------------------------------------------------------
    max_queue_depth_urgent: int = Field(
        100_000,
        ge=0,
        description="Waiting messages before urgent producers get Overloaded; "
        "0 = unbounded. Highest bound: urgent is refused last.",
    )
    max_queue_depth_normal: int = Field(
        50_000,
        ge=0,
        description="Waiting messages before normal producers get Overloaded; 0 = unbounded.",
    )
    max_queue_depth_bulk: int = Field(
        20_000,
        ge=0,
        description="Waiting messages before bulk producers get Overloaded; "
        "0 = unbounded. Lowest bound: bulk is refused first.",
    )
    queue_depth_cache_ms: float = Field(
        200.0,
        ge=0,
        description="Unused: admission is one atomic check in Redis on every enqueue "
        "(docs/backpressure.md); kept so environments that set it still start.",
    )
    metrics_key_prefix: str = Field(
        "modq:metrics:",
        description="Namespace in the broker's Redis of the wait-time "
        "histogram and refusal counters that `modq metrics serve` exports.",
    )
    malloc_trim_interval_s: float = Field(
        30.0,
        ge=0.0,
        description="Workers hand freed heap memory back to the OS (glibc malloc_trim) at most "
        "this often, after a task; 0 = never. Without it RSS keeps the high-water mark of "
        "every big message.",
    )
    record_wait_time: bool = Field(
        True,
        description="Workers record each job's enqueue-to-start wait (one pipelined "
        "Redis call per job) for the `modq_queue_wait_seconds` histogram.",
    )
    worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Each worker process serves /metrics, /healthz and /livez on this port "
        "(0 = off); `modq worker --processes N` gives process i the port + i.",
    )
    worker_state_db: str = Field(
        "var/worker-state/%n.db",
        description="Each worker node's state file (revoked task ids, kept across restarts; "
        "%n is the node name, e.g. modq-1); empty = revokes live in memory only.",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1",
        description="Address the worker's metrics server binds; 0.0.0.0 in a container so "
        "Prometheus and the orchestrator's probes can reach it.",
    )
    gpu_fp16: bool = Field(
        True,
        description="On CUDA, run an fp16 copy of the model (made once, cached next to "
        "it) if it passes the parity check; ignored on CPU.",
    )
    gpu_fp16_max_abs_diff: float = Field(
        5e-3,
        gt=0,
        description="Largest score difference fp16 may show against fp32 on the "
        "load-time probe texts; beyond it the worker stays on fp32 and logs why.",
    )
    gpu_io_binding: bool = Field(
        True,
        description="On CUDA, bind inputs from numpy and outputs on the device, copying "
        "scores back once per batch; CPU runs never bind.",
    )

    # --- HTTP API (`modq api`) ---------------------------------------------------------------
    api_max_body_bytes: int = Field(
        8_388_608,
        ge=1_024,
        description="Largest request body the API reads (413 beyond): 8 MiB fits a batch of "
        "1,000 items of ~8 KB each.",
    )
    api_result_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="How long a synchronous request waits for its result when it names no "
        "timeout_s (503 with the job id after it; the job goes on).",
    )
    api_result_timeout_per_item_s: float = Field(
        0.1,
        ge=0,
        description="What a sync list adds to its deadline per item (/v1/moderations, "
        "/v1/moderate/batch): 1,000 items wait MODQ_API_RESULT_TIMEOUT_S + 100 s by default "
        "(at most 300 s), so a full list can meet its deadline on one CPU worker.",
    )
    api_header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A client must send a request's whole header within this long of its "
        "first byte (or of connecting): a slower one gets 408 and is dropped.",
    )
    api_body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="A client must send a request's whole body within this long of its "
        "header: a slower one gets 408 and is dropped (8 MiB in 30 s is ~280 KB/s).",
    )
    api_readiness_cache_s: float = Field(
        2.0,
        ge=0,
        description="/readyz and the no-worker check reuse one answer this long (each fresh "
        "answer is a broadcast to the workers and a SQL round trip).",
    )
    api_retry_after_s: int = Field(
        1, ge=1, description="Retry-After of a 503 (overloaded, no worker ready, deadline)."
    )

    # --- API keys, rate limits, webhooks ----------------------------------------------------
    api_key_cache_s: float = Field(
        5.0,
        ge=0,
        description="An API process trusts a key lookup this long: a revoked key stops "
        "working within this bound (0 = read SQL on every request).",
    )
    rate_limit_per_min: float = Field(
        600.0,
        ge=0,
        description="Requests per minute each API key may make, kept in Redis across every "
        "API process (a token bucket); 0 = unlimited.",
    )
    rate_limit_burst: int = Field(
        60, ge=1, description="Requests a key may make at once before its rate applies."
    )
    api_key_max_in_flight: int = Field(
        2,
        ge=1,
        description="Jobs one API key may have queued or running at once per API process "
        "(sync requests and batch chunks); past it the key's requests wait in the API, so "
        "one key's flood never fills the queues ahead of another key's requests.",
    )
    api_batch_chunk_items: int = Field(
        32,
        ge=1,
        description="A sync batch is sent as messages of at most this many items, each taking "
        "one of its key's slots: no request waits behind a whole batch.",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key that signs webhooks (MODQ_WEBHOOK_SECRET); unset = jobs "
        "with a callback_url are refused.",
    )
    webhook_allowed_hosts: str = Field(
        "",
        description="Comma-separated hosts webhooks may go to (exact, or *.example.com); "
        "empty = any host whose addresses are all public (no loopback, private, link-local).",
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Deliveries tried per webhook before it is given up (logged)."
    )
    webhook_backoff_base_s: float = Field(
        2.0, gt=0, description="Wait before the 2nd attempt; doubles each time (with jitter)."
    )
    webhook_backoff_max_s: float = Field(
        600.0, gt=0, description="Longest wait between two attempts."
    )
    webhook_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Timeout of one delivery attempt's connect and of each read: a receiver "
        "that does not answer within it is a failed attempt (retried with backoff).",
    )
    webhook_host_concurrency: int = Field(
        4,
        ge=1,
        description="Deliveries in progress to one receiver host per `modq webhooks` process; "
        "a delivery past it waits on the webhooks queue, holding no thread.",
    )

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_result_backend_url(self) -> str:
        """The result store: ``result_backend_url``, else a Redis broker (an app that sets only
        ``MODQ_BROKER_URL`` gets its results from there), else ``redis_url``."""
        if self.result_backend_url:
            return self.result_backend_url
        if self.broker_url and self.broker_url.partition("://")[0] in ("redis", "rediss"):
            return self.broker_url
        return self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
