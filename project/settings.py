"""Settings for the sizing service, read from the environment.

Defaults are embedded and need no server: SQLite and kombu's filesystem broker under var/.
Production points DATABASE_URL at PostgreSQL and CELERY_BROKER_URL at Redis.
"""
import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("SIZING_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _local_secret_key() -> str:
    # A per-checkout random key kept out of git, so zero-setup runs need no secret in the repo.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
HTTPS = env.bool("HTTPS", default=False)  # behind TLS: production (see "Security" below)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if HTTPS:
        # Every web worker must sign with the same key, and production secrets live in the
        # environment, never in a file the service made up for itself.
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment in production (HTTPS=true).")
    SECRET_KEY = _local_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "simple_history",
    "sizing_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "project.middleware.DocumentCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "project.middleware.ApiTrailingSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if env.str("TEST_DATABASE_NAME", default=""):  # lets two test runs share one PostgreSQL server
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE takes the write lock
    # up front so concurrent writers queue instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # recursive_triggers: INSERT OR REPLACE must fire the ledger's delete guard too.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA recursive_triggers=ON;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # libpq waits forever for a server that accepts and never answers: a (re)connect must give up,
    # so sizing fails closed (SizingUnavailable) and the API answers 503 before anything else times out.
    # 2 s is libpq's smallest (it reads 1 as 2); it is per address tried. `?connect_timeout=N` in
    # DATABASE_URL overrides it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
    # The ledger INSERT (the one statement run on a server-binding cursor) is prepared after a few
    # runs on a connection; Django's own cursors bind client-side and never prepare. Behind
    # PgBouncer in transaction mode, allow prepared statements there (max_prepared_statements,
    # PgBouncer >= 1.21) or set DATABASE_PREPARE_THRESHOLD= (empty) to never prepare.
    _prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "prepare_threshold", int(_prepare_threshold) if _prepare_threshold else None
    )
# The longest one SQL statement of a web request may run on PostgreSQL (seconds; 0: no limit), set
# on the web server's sessions by project/wsgi.py, which says why only there.
DATABASE_STATEMENT_TIMEOUT = env.float("DATABASE_STATEMENT_TIMEOUT", default=5.0)
if DATABASE_STATEMENT_TIMEOUT < 0:
    raise ImproperlyConfigured("DATABASE_STATEMENT_TIMEOUT must be 0 (no limit) or a number of seconds.")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


REDIS_CACHE_BACKEND = "django.core.cache.backends.redis.RedisCache"
# A Redis that accepts connections and never answers would hold the request until gunicorn kills the
# worker. A healthy one answers in well under a millisecond, so only a stalled one reaches 0.5 s, and the
# throttle (the one cache user on the hot path) pays it at most once per process every few seconds
# (sizing_app.api.throttling.CACHE_RETRY_SECONDS). `?socket_timeout=N&socket_connect_timeout=N` in
# the cache's URL overrides it.
REDIS_CACHE_TIMEOUT_SECONDS = 0.5


def _cache(url: str, **config) -> dict:
    """A cache from its URL. redis:// (rediss://, unix://) uses Django's own RedisCache, with timeouts
    (django-environ would map it to django_redis when installed, which takes other OPTIONS)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        timeouts = {"socket_connect_timeout": REDIS_CACHE_TIMEOUT_SECONDS,
                    "socket_timeout": REDIS_CACHE_TIMEOUT_SECONDS}
        return {"BACKEND": REDIS_CACHE_BACKEND, "LOCATION": url, "OPTIONS": timeouts, **config}
    return environ.Env.cache_url_config(url)


def _throttle_cache() -> dict:
    """The API throttle's counters: one store shared by every process of the service.

    Default: files under VAR_DIR/cache/throttle (shared by the gunicorn workers of one machine);
    Redis in production (THROTTLE_CACHE_URL=redis://host:port/db).
    """
    url = env.str("THROTTLE_CACHE_URL", default="")
    if url:
        return _cache(url, KEY_PREFIX="throttle")
    return {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache" / "throttle"),
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }


CACHES = {
    "default": _cache(env.str("CACHE_URL", default="locmemcache://")),
    "throttle": _throttle_cache(),
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request until collectstatic has run
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
LOGIN_URL = "admin:login"

# Security: behind TLS in production (HTTPS=true) every transport protection is on.
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "project.views.csrf_failure"  # Django's page, allowed its inline <style> under the CSP
# Content-Security-Policy (django-csp, on HTML documents): pages run only this origin's scripts and styles, no inline
# code, so text a user typed (an order_ref, an override reason) can never run in the compliance
# admin or the dashboard. Three third-party pages are allowed their inline styles, each alone: the
# API docs (Swagger UI's <style>), policy history (simple_history's style attribute), CSRF failure.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SESSION_COOKIE_HTTPONLY = True
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

REST_FRAMEWORK = {
    # Machines send "Authorization: Token <key>" (cached per process for a few seconds, see
    # sizing_app.api.authentication); people use their admin session, with CSRF enforced.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "sizing_app.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Role table in sizing_app.api.permissions: every view names its operations, nothing else passes.
    "DEFAULT_PERMISSION_CLASSES": ["sizing_app.api.permissions.RolePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["sizing_app.api.throttling.RoleRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "engine": env.str("API_THROTTLE_ENGINE", default="6000/min"),
        "user": env.str("API_THROTTLE_USER", default="1200/min"),
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["sizing_app.api.parsers.BoundedJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "sizing_app.api.negotiation.JSONOnlyNegotiation",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_METADATA_CLASS": None,  # OPTIONS answers 405 instead of describing serializers
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "sizing_app.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "sizing_app.api.schema.ApiAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Adaptive position sizing API",
    "DESCRIPTION": (
        "Size factors, sizing decisions (the ledger), execution health, telemetry intake and policy. "
        "Machines authenticate with `Authorization: Token <key>`, people with their session. "
        "Every error is `{\"error\": {\"code\", \"message\", \"details\"}}`. An unknown query parameter is "
        "a 400, so a misspelt filter never silently returns everything."
    ),
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Every PATCH here needs its one field: keep PATCH bodies' required fields required.
    "COMPONENT_SPLIT_PATCH": False,
    "ENUM_NAME_OVERRIDES": {
        "ModeEnum": "sizing_app.models.Mode",
        "SideEnum": "sizing_app.models.Side",
        "OrderStatusEnum": "sizing_app.models.Order.Status",
        "LiquidityEnum": "sizing_app.models.Order.Liquidity",
        "RunStatusEnum": "sizing_app.models.RecomputeRun.Status",
        "SnapshotStatusEnum": "sizing_app.models.SizingSnapshot.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sizing_app.api.schema.bulk_limits_hook",
    ],
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": True},
}

# Celery: no-server filesystem broker by default, Redis in production.
SIZING_CHUNK_TIME_LIMIT = 180  # hard limit of one recompute chunk (seconds); soft limit 60 s earlier
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # kombu's default is ./control, relative to wherever the worker was started.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A message unacknowledged for this long is redelivered: keep it far above any task's hard
        # time limit (recompute_chunk: 180 s), or a slow chunk would run twice.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # Without these a broker that accepts connections and never answers blocks a send (beat's, the
        # dispatcher's) or a worker's acknowledgement forever. kombu 5.5 polls the queue with BRPOP and
        # a fixed 1 s server-side timeout; its worker reads the reply only once it has arrived, but any
        # reader waiting on it would fail every idle poll under a read timeout shorter than that. 5 s
        # stays well above, and rides out Redis's own pauses (a BGSAVE fork, a slow fsync) without
        # dropping the workers' connections. 2 s to connect lets one lost SYN be resent. The API's
        # publish, which must answer fast, has tighter ones of its own (api.views.RunsView).
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
    if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= SIZING_CHUNK_TIME_LIMIT:
        raise ImproperlyConfigured(
            f"CELERY_VISIBILITY_TIMEOUT must exceed the recompute chunk's hard time limit "
            f"({SIZING_CHUNK_TIME_LIMIT} s), or a running chunk would be delivered twice."
        )
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# Defaults for every task; the recompute tasks set tighter limits of their own.
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_ACKS_LATE = False  # only idempotent tasks opt in (recompute_chunk)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Sizing policy knobs (validated in sizing_app.conf).
SIZING_RECOMPUTE_SECONDS = env.int("SIZING_RECOMPUTE_SECONDS", default=300)
SIZING_MAX_AGE_SECONDS = env.int("SIZING_MAX_AGE_SECONDS", default=3 * SIZING_RECOMPUTE_SECONDS)
SIZING_FACTOR_MIN = env.float("SIZING_FACTOR_MIN", default=0.25)
SIZING_FACTOR_MAX = env.float("SIZING_FACTOR_MAX", default=2.0)
# The persisted factor moves at most x(1 + step) or /(1 + step) per hour since the previous snapshot.
SIZING_MAX_STEP_PER_HOUR = env.float("SIZING_MAX_STEP_PER_HOUR", default=0.10)
if "SIZING_MAX_STEP" in os.environ:
    SIZING_MAX_STEP = os.environ["SIZING_MAX_STEP"]  # refused at start-up with the replacement's name (conf.py)
# Must divide an hour: the metrics read hourly bars built from these candles.
SIZING_CANDLE_INTERVAL = env.str("SIZING_CANDLE_INTERVAL", default="1h")
# A snapshot whose newest closed candle is older than this is stale_input (neutral); 0: 3 candle intervals.
SIZING_MAX_CANDLE_AGE_SECONDS = env.int("SIZING_MAX_CANDLE_AGE_SECONDS", default=0)
# A snapshot may not be dated beyond now plus this (recompute refuses it; sizing never serves one).
SIZING_MAX_CLOCK_SKEW_SECONDS = env.int("SIZING_MAX_CLOCK_SKEW_SECONDS", default=60)
SIZING_LOOKBACK_DAYS = env.int("SIZING_LOOKBACK_DAYS", default=30)
SIZING_TARGET_VOLATILITY = env.float("SIZING_TARGET_VOLATILITY", default=0.60)
# Capital a symbol's equity is measured against when the symbol sets none; unset: the largest notional
# the symbol held over the lookback (scale-aware in any quote currency).
SIZING_CAPITAL_BASE = env.float("SIZING_CAPITAL_BASE", default=None)
SIZING_DEFAULT_MODE = env.str("SIZING_DEFAULT_MODE", default="live")
# The largest gross_target accepted from the engine, in its own units (quote notional or base
# quantity): far above any real order, far below where float products lose integer precision.
SIZING_MAX_GROSS = env.float("SIZING_MAX_GROSS", default=1e15)
# Bounds of the whole multiplier, final size / gross target (sizing_app.domain.stack.bound_total).
SIZING_TOTAL_MIN = env.float("SIZING_TOTAL_MIN", default=0.1)
SIZING_TOTAL_MAX = env.float("SIZING_TOTAL_MAX", default=3.0)
# Keep each process's latest factors fresh from a background thread (off in the test suite).
SIZING_BACKGROUND_REFRESH = env.bool("SIZING_BACKGROUND_REFRESH", default=True)
# Outage journal (sizing_app/journal.py): a file on local disk, e.g. var/journal/ledger.jsonl.
# Empty (the default): a decision the ledger database cannot take raises SizingUnavailable.
SIZING_JOURNAL_PATH = env.str("SIZING_JOURNAL_PATH", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
