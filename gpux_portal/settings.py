"""GPUX Portal settings, read from the environment.

With nothing set the portal runs *embedded*: SQLite under ``var/``, Celery on a file broker, e-mail to the
console. That is what ``make run`` uses. Production (``DJANGO_ENV=production``) refuses insecure defaults.
See docs/admin/configuration.md for every variable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GPUX_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = env(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


DJANGO_ENV = env("DJANGO_ENV", "development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, got {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"
# Off unless asked for (DEBUG=true, never in production): errors are the portal's own pages, in `make run` too. On,
# Django shows its technical 404 and 500 pages (settings, traceback) instead: for a developer at their own machine.
DEBUG = env_bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production")

# --- secrets ------------------------------------------------------------------------------------------------
_INSECURE_KEY = "django-insecure-gpux-portal-development-key-do-not-use-in-production"
SECRET_KEY = env("SECRET_KEY")
if SECRET_KEY is None and env("SECRET_KEY_FILE"):
    SECRET_KEY = Path(env("SECRET_KEY_FILE")).read_text().strip()
if SECRET_KEY is None:
    if PRODUCTION:
        raise ImproperlyConfigured("Set SECRET_KEY or SECRET_KEY_FILE when DJANGO_ENV=production")
    SECRET_KEY = _INSECURE_KEY
if PRODUCTION and (SECRET_KEY == _INSECURE_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("SECRET_KEY is too weak for production: use at least 50 random characters")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"])
if PRODUCTION and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    raise ImproperlyConfigured("Set ALLOWED_HOSTS to the portal's host names when DJANGO_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
PORTAL_URL = env("PORTAL_URL", "http://127.0.0.1:8000")

# --- applications -------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Sign-in through identity providers (docs/admin/sso-oidc.md): OpenID Connect (the portal's hardened class,
    # apps/accounts/oidc), GitHub and GitLab.
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.gitlab",
    "apps.core",
    "apps.accounts",
    "apps.organizations",
    "apps.audit",
    "apps.marketplace",
    "apps.analytics",
    "apps.registries",
    "apps.inference",
    # The project itself, for its management commands: seed_demo uses every app, so it lives above them all.
    "gpux_portal",
]

# SAML per organization (djangosaml2 + pysaml2 + xmlsec1: the "enterprise" extra, docs/admin/sso-saml.md). Without
# them the portal runs, and the SSO settings page says what to install.
SAML_XMLSEC_BINARY = env("SAML_XMLSEC_BINARY") or shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
from apps.accounts.enterprise import saml_capability  # noqa: E402 - reads only the standard library and the extras

SAML_ENABLED = saml_capability().available
if SAML_ENABLED:
    INSTALLED_APPS.append("djangosaml2")

MIDDLEWARE = [
    # django-prometheus: request counts and latency by route name (first and last, so it times the whole stack).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # What every answer carries or goes through, the predict lane's included: X-Frame-Options, Content-Length, the
    # audit context (IP, user agent) and a 503 for a Redis that does not answer.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "apps.audit.middleware.AuditContextMiddleware",
    # Redis (broker, result channel) not answering: 503 with Retry-After instead of a 500, pages and API alike.
    "apps.core.middleware.QueueUnavailableMiddleware",
    # The predict routes, for a token and a run decision this process already holds: answered here by the route's
    # own view (apps/inference/api/predict_lane.py), before the middleware below, none of which acts on a request
    # with a Bearer token and no session: static files, sessions, CSRF, the session's user, messages, allauth,
    # sign-in lockout, MFA, single sign-on, axes. Anything the lane does not take goes on through all of them.
    "apps.inference.api.predict_lane.PredictLane",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # While the cache that counts failed sign-ins does not answer, sign-in answers 503 (docs/admin/mfa-and-lockout.md).
    "apps.accounts.lockout.SignInNeedsCacheMiddleware",
    # organizations with require_mfa: API calls with a session by a member without MFA answer 403 mfa_required.
    "apps.accounts.mfa.OrganizationMfaMiddleware",
    # organizations with require_sso: sessions that did not sign in through their IdP do not reach them.
    "apps.accounts.sso.OrganizationSsoMiddleware",
    # django-axes must be last: it inspects the outcome of authentication.
    "axes.middleware.AxesMiddleware",
    "apps.core.request_metrics.PrometheusAfterMiddleware",  # django-prometheus's, without request.headers
]

if SAML_ENABLED:
    # The SAML round trip's own session (outstanding AuthnRequests), in a cookie the IdP's POST back carries.
    MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
                      "djangosaml2.middleware.SamlSessionMiddleware")  # fmt: skip

ROOT_URLCONF = "gpux_portal.urls"
SILENCED_SYSTEM_CHECKS = [
    # restrict() is the permission mechanism; guardian only stores the grants, so its backend is not needed.
    "guardian.W001",
    # e-mail is unique case-insensitively through a functional UniqueConstraint (accounts_user_email_ci_unique).
    "auth.W004",
]
WSGI_APPLICATION = "gpux_portal.wsgi.application"
ASGI_APPLICATION = "gpux_portal.asgi.application"

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
                "apps.accounts.sso.sso_banner",
            ],
        },
    }
]

# --- data ---------------------------------------------------------------------------------------------------
EMBEDDED = env("DATABASE_URL") is None
if EMBEDDED:
    if PRODUCTION:
        raise ImproperlyConfigured("Set DATABASE_URL (PostgreSQL) when DJANGO_ENV=production")
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "portal.sqlite3",
            # web, worker and beat all write: WAL, a busy timeout and immediate transactions keep them apart.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    DATABASES = {"default": dj_database_url.parse(env("DATABASE_URL"), conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    # A reused connection is checked before each request's (and task's) first query, by polling its socket: no
    # round trip (apps/core/db/postgresql/base.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "apps.core.db.postgresql"
        # Parameters travel apart from the query (psycopg's server-side binding): no quoting in Python. And PostgreSQL
        # prepares a statement a connection sends for the DB_PREPARE_THRESHOLD-th time (psycopg's prepare_threshold):
        # no parse and plan of the same query again. 0: none prepared, for a pooler that cannot keep prepared
        # statements (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["server_side_binding"] = env_bool("DB_SERVER_SIDE_BINDING", True)
        options["prepare_threshold"] = env_int("DB_PREPARE_THRESHOLD", 5) or None
    if env("DATABASE_TEST_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": env("DATABASE_TEST_NAME")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    # django-redis, so that a Redis outage is not a 500 on every request (throttles and lockout read the cache on
    # each one): while Redis does not answer, reads find nothing and writes are dropped, within a short timeout.
    # What that means for rate limits and sign-in: docs/admin/mfa-and-lockout.md, "When Redis is down".
    CACHES = {
        "default": {
            # django-redis, counted by django-prometheus (django_cache_get_hits_total, ..._misses_total).
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": float(env("REDIS_CACHE_CONNECT_TIMEOUT_SECONDS", "0.5")),
                "SOCKET_TIMEOUT": float(env("REDIS_CACHE_TIMEOUT_SECONDS", "1")),
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- authentication -----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # axes first: it refuses locked-out credentials before any backend checks them.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    # sessions signed in through an organization's SAML IdP (the ACS signs them in; it checks no credentials).
    "apps.accounts.sso.OrganizationSsoBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# django-guardian: no anonymous user row; restrict() handles anonymous callers by visibility.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# django-allauth
ACCOUNT_ADAPTER = "apps.accounts.adapters.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = "handle"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_USERNAME_MIN_LENGTH = 2
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
# The product's name as mails and pages say it ("Hello from GPUX Portal!"), never the host name a request came to.
PORTAL_NAME = env("PORTAL_NAME", "GPUX Portal")
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{PORTAL_NAME}] "
ACCOUNT_RATE_LIMITS = {
    # allauth's own rate limits, on (these are its defaults, written out so that operators see them).
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reset_password": "20/m/ip,5/m/key",
    "reauthenticate": "10/m/user",
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "GPUX Portal"

# django-axes: lock out an account/IP pair after repeated failed passwords (web form and API alike).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "login"
# allauth passes the address to authenticate() as ``email``: tell axes where the account name is.
AXES_USERNAME_CALLABLE = "apps.accounts.lockout.axes_username"
AXES_LOCKOUT_TEMPLATE = "account/lockout.html"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# --- enterprise sign-in: OpenID Connect, GitHub, GitLab (docs/admin/sso-oidc.md) ------------------------------
# Providers come from OIDC_PROVIDERS / OIDC_PROVIDERS_FILE, GITHUB_CLIENT_ID / _SECRET and GITLAB_CLIENT_ID / _SECRET
# (apps/accounts/oidc/config.py), or from the Django admin (Social applications).
from apps.accounts.oidc.config import socialaccount_providers  # noqa: E402

SOCIALACCOUNT_PROVIDERS = socialaccount_providers(os.environ)
SOCIALACCOUNT_ADAPTER = "apps.accounts.social.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
# Link a sign-in to an existing account only by an address the provider says it verified (allauth wipes a password
# set while that account's address was unverified); an unverified one gets the sign-up form, never the account.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_QUERY_EMAIL = True
# The portal does not call providers' APIs for people: it keeps no access or refresh tokens.
SOCIALACCOUNT_STORE_TOKENS = False
# Starting a sign-in is a POST from the sign-in page (a GET shows a confirmation first): no login CSRF.
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = env_int("SOCIALACCOUNT_REQUESTS_TIMEOUT", 10)

# --- enterprise sign-in: LDAP / Active Directory (docs/operator/ldap.md) ------------------------------------
# Configured by the LDAP_* variables; needs the `enterprise` extra (python-ldap, django-auth-ldap). Without it the
# portal runs with local accounts and `manage.py check` says what is missing.
LDAP_SERVER_URI = env("LDAP_SERVER_URI")
LDAP_ENABLED = False
if LDAP_SERVER_URI:
    from apps.accounts.enterprise import ldap_capability

    if ldap_capability().available:
        from apps.accounts.ldap_config import ldap_settings

        globals().update(ldap_settings(os.environ))
        # After the local backends: a portal password is checked first, the directory only when it fails.
        AUTHENTICATION_BACKENDS.append("apps.accounts.ldap.DirectoryBackend")
    elif PRODUCTION:
        raise ImproperlyConfigured(f"LDAP_SERVER_URI is set, but {ldap_capability().reason}")

# The client IP is REMOTE_ADDR unless the operator names a trusted proxy header (e.g. HTTP_X_FORWARDED_FOR).
TRUSTED_PROXY_HEADER = env("TRUSTED_PROXY_HEADER")
if TRUSTED_PROXY_HEADER:
    AXES_IPWARE_META_PRECEDENCE_ORDER = [TRUSTED_PROXY_HEADER, "REMOTE_ADDR"]

# --- single sign-on (docs/admin/sso-saml.md, docs/admin/enforced-sso.md, docs/admin/scim.md) -----------------------
SAML_CONFIG_LOADER = "apps.accounts.saml.sp_config"
SAML_DEFAULT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SAML_CSP_HANDLER = ""
SAML_IGNORE_AUTHENTICATED_USERS_ON_LOGIN = False
# How far the portal's and the IdP's clocks may disagree when an assertion's validity is checked (seconds).
SAML_CLOCK_SKEW_SECONDS = env_int("SAML_CLOCK_SKEW_SECONDS", 120)
# The SAML session cookie comes back on the IdP's cross-site POST: SameSite=None needs Secure (HTTPS).
SAML_SESSION_COOKIE_SAMESITE = "None" if PRODUCTION else "Lax"
# Host names and networks (CIDR) an IdP metadata URL may point to although private, loopback or link-local.
SSO_METADATA_ALLOWED_NETWORKS = env_list("GPUX_SSO_ALLOWED_NETWORKS")
SSO_METADATA_TIMEOUT_SECONDS = env_int("SSO_METADATA_TIMEOUT_SECONDS", 10)
SSO_DNS_TIMEOUT_SECONDS = env_int("SSO_DNS_TIMEOUT_SECONDS", 5)
# A dotted path to a function name -> [TXT record strings] used instead of DNS (tests; split-horizon setups).
SSO_DNS_TXT_RESOLVER = env("SSO_DNS_TXT_RESOLVER")

# --- API ----------------------------------------------------------------------------------------------------
# JSON and YAML from outside (bodies, form fields, batch files, gpux.yml, registries' answers) nested deeper than
# this many arrays/objects are refused before parsing (apps/core/parsing.py, docs/api/errors.md).
INPUT_MAX_NESTING_DEPTH = env_int("INPUT_MAX_NESTING_DEPTH", 64)
if not 8 <= INPUT_MAX_NESTING_DEPTH <= 200:
    raise ImproperlyConfigured("INPUT_MAX_NESTING_DEPTH must be between 8 and 200 (Python recurses once per level)")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.api.permissions.TokenScopePermission"],
    # DRF's JSON, encoded by orjson (apps/core/api/renderers.py); the browsable API as DRF has it by default.
    "DEFAULT_RENDERER_CLASSES": [
        "apps.core.api.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON nested past INPUT_MAX_NESTING_DEPTH, or holding a lone surrogate, answers 400 (apps/core/api/parsers.py)
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.errors.exception_handler",
    # OPTIONS: every view answers its metadata in JSON, with or without a serializer (apps/core/api/metadata.py)
    "DEFAULT_METADATA_CLASS": "apps.core.api.metadata.ApiMetadata",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.core.api.metadata.ContentNegotiation",
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.core.api.throttling.AnonRateThrottle",
        "apps.core.api.throttling.UserRateThrottle",
        # the per-minute API quota of the caller's organization and token (apps/analytics/quotas.py)
        "apps.analytics.quotas.ApiRateQuota",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", "600/minute"),
        "user": env("API_THROTTLE_USER", "6000/minute"),
        # failed Bearer token attempts per client IP (apps.accounts.lockout.FailedTokenThrottle)
        "failed_token": env("API_THROTTLE_FAILED_TOKEN", "20/minute"),
        # predictions per user (apps.inference.api.views.PredictThrottle): a client batching requests runs many
        "predict": env("API_THROTTLE_PREDICT", "60000/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GPUX Portal API",
    "DESCRIPTION": "Organizations, teams, tokens, audit trail, models, registries and inference. "
    "Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several serializers have a "status" choice field: name each enum after what it is the status of.
    "ENUM_NAME_OVERRIDES": {
        "InvitationStatusEnum": "apps.organizations.models.Invitation.Status",
        "ApiTokenStatusEnum": "apps.accounts.api.serializers.STATUS_NAMES",
        "FileRoleEnum": "apps.marketplace.models.FileRole",
        "RoleEnum": "apps.organizations.api.serializers.ROLE_NAMES",
        "VersionStatusEnum": "apps.marketplace.models.VersionStatus",
        "UploadStatusEnum": "apps.marketplace.models.UploadStatus",
        "VisibilityEnum": "apps.core.access.Visibility",
        "RegistryModeEnum": "apps.registries.models.RegistryMode",
        "DeploymentStatusEnum": "apps.inference.models.DeploymentStatus",
        "ApiTokenKindEnum": "apps.accounts.models.TokenKind",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}
API_TOKEN_PREFIX = "gpux_"
API_TOKEN_LAST_USED_RESOLUTION = 60  # seconds: last_used is written at most once a minute
# How long a web process may keep a token's user and an online access decision before reading them again
# (apps/core/shortlived.py): a revoked token or a removed membership is refused everywhere within this bound.
SHORT_LIVED_CACHE_SECONDS = float(env("SHORT_LIVED_CACHE_SECONDS", "2"))

# --- jobs ---------------------------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
    # No results through Celery: jobs record theirs in the Job table (a benchmark sets one for its bare tasks).
    CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND")
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "broker"),
        "data_folder_out": str(VAR_DIR / "broker"),
        "processed_folder": str(VAR_DIR / "broker" / "processed"),
        "control_folder": str(VAR_DIR / "broker" / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes every database connection before and after each task unless this is set: a new
# PostgreSQL connection per task (about 8 ms, most of a prediction's time on the worker). With it, a worker
# process keeps its connection for this many tasks, and gpux_portal/celery.py applies Django's own rules
# (CONN_MAX_AGE, CONN_HEALTH_CHECKS) around each task, as Django does around each request.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
# Extra modules with job kinds for the worker to import (plugins; the test suite's test-only kinds).
CELERY_IMPORTS = env_list("CELERY_EXTRA_TASK_MODULES")
# The reaper (docs/operator/jobs.md): a running job silent for longer than its time limit plus this grace
# is re-queued, or failed after its maximum attempts.
JOBS_REAPER_GRACE_SECONDS = env_int("JOBS_REAPER_GRACE_SECONDS", 60)
# A job's hard time limit comes this long after its soft one (its time_limit): the worker kills the process and
# fails the job. Keep it below the grace, so that the reaper never takes a job from a live attempt.
JOBS_HARD_LIMIT_MARGIN_SECONDS = env_int("JOBS_HARD_LIMIT_MARGIN_SECONDS", 30)
# A queued job that no worker has claimed this long after its message was sent is sent again by the reaper (its
# message may be lost: a Redis restart, a killed worker's prefetched messages); the wait doubles with each re-send,
# up to the broker's visibility timeout. A duplicate message is harmless: the claim is conditional.
JOBS_RESEND_AFTER_SECONDS = env_int("JOBS_RESEND_AFTER_SECONDS", 300)
# What a 503 answers in Retry-After when the job queue (Redis) does not answer.
JOBS_RETRY_AFTER_SECONDS = env_int("JOBS_RETRY_AFTER_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "core.reap_stale_jobs", "schedule": env_int("JOBS_REAPER_INTERVAL_SECONDS", 60)},
    "start-due-registry-syncs": {
        "task": "registries.start_due_syncs",
        "schedule": env_int("REGISTRY_SCHEDULER_INTERVAL_SECONDS", 60),
    },
}

# --- usage analytics and quotas (docs/admin/analytics.md, docs/admin/quotas.md) ---------------------------------
# Recording appends each event to a Redis stream (USAGE_REDIS_URL, else REDIS_URL); the drain copies it into the
# database every USAGE_DRAIN_INTERVAL_SECONDS, the rollup recomputes changed hours and days every
# USAGE_ROLLUP_INTERVAL_SECONDS. USAGE_RECORDING=false turns recording off.
USAGE_RECORDING = env_bool("USAGE_RECORDING", True)
USAGE_REDIS_URL = env("USAGE_REDIS_URL")
USAGE_REDIS_TIMEOUT_SECONDS = float(env("USAGE_REDIS_TIMEOUT_SECONDS", "0.5"))
USAGE_REDIS_RETRY_SECONDS = float(env("USAGE_REDIS_RETRY_SECONDS", "5"))
# Events wait this long in a per-process buffer and go to Redis in one round trip (0: each from its request).
USAGE_RECORD_BUFFER_SECONDS = float(env("USAGE_RECORD_BUFFER_SECONDS", "0.05"))
# Past this many entries waiting (the drain stopped for long), Redis trims the oldest: a bound on its memory.
USAGE_STREAM_MAX_LENGTH = env_int("USAGE_STREAM_MAX_LENGTH", 2_000_000)
USAGE_DRAIN_INTERVAL_SECONDS = env_int("USAGE_DRAIN_INTERVAL_SECONDS", 5)
USAGE_DRAIN_BATCH_SIZE = env_int("USAGE_DRAIN_BATCH_SIZE", 5000)
USAGE_DRAIN_LOCK_SECONDS = env_int("USAGE_DRAIN_LOCK_SECONDS", 30)
# Entries the drain could not store are kept in the stream gpux:usage:rejected, at most this many (the oldest go).
USAGE_REJECTED_MAX_LENGTH = env_int("USAGE_REJECTED_MAX_LENGTH", 100_000)
# The live pages (an organization's monitoring, a deployment's live status, the deployments list) drain what waits
# in the stream for at most this long before they read online predictions (0: they show what the periodic drain
# wrote, up to USAGE_DRAIN_INTERVAL_SECONDS behind). docs/admin/monitoring.md.
USAGE_LIVE_DRAIN_SECONDS = float(env("USAGE_LIVE_DRAIN_SECONDS", "1.0"))
USAGE_ROLLUP_INTERVAL_SECONDS = env_int("USAGE_ROLLUP_INTERVAL_SECONDS", 60)
# A day still receiving events is rolled up again at most this often (hours: every rollup run).
USAGE_DAY_ROLLUP_REFRESH_SECONDS = env_int("USAGE_DAY_ROLLUP_REFRESH_SECONDS", 600)
# Raw events are kept this many days (0: for good); hourly rollups this many; daily rollups for good.
USAGE_RAW_RETENTION_DAYS = env_int("USAGE_RAW_RETENTION_DAYS", 90)
USAGE_HOURLY_ROLLUP_RETENTION_DAYS = env_int("USAGE_HOURLY_ROLLUP_RETENTION_DAYS", 400)
# Quotas (plans and per-organization limits in the Django admin) are re-read at most this often per process.
QUOTA_CACHE_SECONDS = env_int("QUOTA_CACHE_SECONDS", 10)
CELERY_BEAT_SCHEDULE["drain-usage-events"] = {
    "task": "analytics.drain_usage_events",
    "schedule": USAGE_DRAIN_INTERVAL_SECONDS,
}
CELERY_BEAT_SCHEDULE["roll-up-usage"] = {"task": "analytics.roll_up_usage", "schedule": USAGE_ROLLUP_INTERVAL_SECONDS}
CELERY_BEAT_SCHEDULE["prune-usage-events"] = {"task": "analytics.prune_usage_events", "schedule": 3600}

# --- monitoring (docs/operator/monitoring.md) ------------------------------------------------------------------
# Metric files of the multiprocess mode: <METRICS_DIR>/web for gunicorn, <METRICS_DIR>/worker-<port> for a Celery
# worker with a metrics port (PROMETHEUS_MULTIPROC_DIR, when the operator sets it per service, wins).
METRICS_DIR = Path(env("GPUX_METRICS_DIR", str(VAR_DIR / "metrics")))
# Who may read /metrics and the workers' metrics ports: a bearer token (Prometheus' `authorization` block) and/or
# client networks (CIDR). Outside production the loopback addresses may, so that `make run` can be scraped locally.
METRICS_BEARER_TOKEN = env("METRICS_BEARER_TOKEN")
if METRICS_BEARER_TOKEN is None and env("METRICS_BEARER_TOKEN_FILE"):
    METRICS_BEARER_TOKEN = Path(env("METRICS_BEARER_TOKEN_FILE")).read_text().strip()
if PRODUCTION and METRICS_BEARER_TOKEN is not None and len(METRICS_BEARER_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_BEARER_TOKEN is too short for production: use at least 32 random characters")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", [] if PRODUCTION else ["127.0.0.1/32", "::1/128"])
# Label cardinality bounds: distinct (model, version, deployment) series per process; organizations in the storage
# gauge (the largest; the rest summed under "(other)"), recomputed at most every METRICS_STORAGE_REFRESH_SECONDS.
METRICS_MAX_MODEL_SERIES = env_int("METRICS_MAX_MODEL_SERIES", 200)
METRICS_STORAGE_TOP_ORGANIZATIONS = env_int("METRICS_STORAGE_TOP_ORGANIZATIONS", 20)
METRICS_STORAGE_REFRESH_SECONDS = env_int("METRICS_STORAGE_REFRESH_SECONDS", 300)
# Workers write a heartbeat (their queues, GPUs and a snapshot of their metrics) this often; three missed: down.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 10)
# How often celery beat verifies every audit chain and records the result for /metrics (0: never).
AUDIT_VERIFY_INTERVAL_SECONDS = env_int("AUDIT_VERIFY_INTERVAL_SECONDS", 3600)
if AUDIT_VERIFY_INTERVAL_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["verify-audit-chains"] = {
        "task": "audit.verify_audit_chains",
        "schedule": AUDIT_VERIFY_INTERVAL_SECONDS,
    }

# --- e-mail -------------------------------------------------------------------------------------------------
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "GPUX Portal <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- organizations ------------------------------------------------------------------------------------------
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365)

# --- model catalog (docs/admin/storage.md) ------------------------------------------------------------------
# Storage quota of an organization whose own quota is unset; 0 means unlimited.
DEFAULT_STORAGE_QUOTA_BYTES = env_int("DEFAULT_STORAGE_QUOTA_BYTES", 50 * 1024**3)
# Where uploads are spooled while they arrive (resumable sessions too): local disk, shared by all web processes.
MARKETPLACE_UPLOAD_DIR = Path(env("MARKETPLACE_UPLOAD_DIR", str(VAR_DIR / "uploads")))
MARKETPLACE_UPLOAD_SESSION_TTL_HOURS = env_int("MARKETPLACE_UPLOAD_SESSION_TTL_HOURS", 24)
# Completing a larger upload session verifies its SHA-256 in a background job (202) instead of the request.
MARKETPLACE_SYNC_COMPLETE_MAX_BYTES = env_int("MARKETPLACE_SYNC_COMPLETE_MAX_BYTES", 256 * 1024 * 1024)
MARKETPLACE_MODEL_RETENTION_DAYS = env_int("MARKETPLACE_MODEL_RETENTION_DAYS", 30)
# "" (the portal streams files), "x-accel-redirect" (nginx), "x-sendfile" (Apache) or "storage-url" (redirect
# to the storage's own, e.g. presigned S3, URL). DOWNLOAD_OFFLOAD_PREFIX is the internal location of MEDIA_ROOT.
DOWNLOAD_OFFLOAD = env("DOWNLOAD_OFFLOAD", "")
DOWNLOAD_OFFLOAD_PREFIX = env("DOWNLOAD_OFFLOAD_PREFIX", "/protected/")
SIGNED_DOWNLOAD_URL_TTL_SECONDS = env_int("SIGNED_DOWNLOAD_URL_TTL_SECONDS", 3600)
# ONNX validation (docs/user/onnx-validation.md): the child process's address space and wall clock, and the
# size limits of a version's files, of each declared tensor and of each text (name, doc string, metadata).
ONNX_VALIDATION_MEMORY_MB = env_int("ONNX_VALIDATION_MEMORY_MB", 4096)
ONNX_VALIDATION_TIMEOUT_S = env_int("ONNX_VALIDATION_TIMEOUT_S", 300)
ONNX_MAX_FILE_BYTES = env_int("ONNX_MAX_FILE_BYTES", 4 * 1024**3)
ONNX_MAX_TENSOR_BYTES = env_int("ONNX_MAX_TENSOR_BYTES", 2 * 1024**3)
ONNX_MAX_TEXT_LENGTH = env_int("ONNX_MAX_TEXT_LENGTH", 65536)

# --- registries (docs/admin/registries.md) ------------------------------------------------------------------
# Fernet keys that encrypt registry credentials, comma-separated, newest first: the first encrypts, all decrypt
# (rotation: put the new key first, run `manage.py rotate_registry_credentials`, then drop the old one).
# Unset outside production, a key derived from SECRET_KEY is used.
REGISTRY_CREDENTIAL_KEYS = env_list("REGISTRY_CREDENTIAL_KEYS")
# Host names and networks (CIDR) registries may reach although they are private, loopback or link-local.
REGISTRY_ALLOWED_NETWORKS = env_list("GPUX_REGISTRY_ALLOWED_NETWORKS")
# Directories the file-system backend may read (a mounted volume); none by default.
REGISTRY_FILE_ROOTS = env_list("GPUX_REGISTRY_FILE_ROOTS")
REGISTRY_HTTP_TIMEOUT_SECONDS = env_int("REGISTRY_HTTP_TIMEOUT_SECONDS", 30)
# Retries of a failed registry call (rate limited or unavailable): attempts, first backoff, longest wait.
REGISTRY_RETRY_ATTEMPTS = env_int("REGISTRY_RETRY_ATTEMPTS", 4)
REGISTRY_RETRY_BACKOFF_SECONDS = float(env("REGISTRY_RETRY_BACKOFF_SECONDS", "1"))
REGISTRY_RETRY_MAX_WAIT_SECONDS = float(env("REGISTRY_RETRY_MAX_WAIT_SECONDS", "120"))
# A listing that pages past this many pages is treated as paginating forever and stopped.
REGISTRY_MAX_PAGES = env_int("REGISTRY_MAX_PAGES", 100_000)
REGISTRY_SYNC_TIME_LIMIT_SECONDS = env_int("REGISTRY_SYNC_TIME_LIMIT_SECONDS", 6 * 3600)
REGISTRY_SCHEDULER_MAX_STARTS_PER_TICK = env_int("REGISTRY_SCHEDULER_MAX_STARTS_PER_TICK", 1000)

# --- i18n, static, media ------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# Outside production WhiteNoise also serves the source folders, so `manage.py runserver` has its static files
# without DEBUG and before collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    # WhiteNoise warns about a missing STATIC_ROOT on every request until collectstatic has run once.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- security -----------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env("SECURE_PROXY_SSL_HEADER"):
        SECURE_PROXY_SSL_HEADER = (env("SECURE_PROXY_SSL_HEADER"), "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- inference (docs/operator/inference.md) ----------------------------------------------------------------
# Where workers keep the files of the versions they run (one folder per version, copied from storage once).
INFERENCE_CACHE_DIR = Path(env("INFERENCE_CACHE_DIR", str(VAR_DIR / "inference")))
# The sessions one worker process keeps loaded, in MiB of resident memory (least recently used out first).
INFERENCE_SESSION_CACHE_MB = env_int("INFERENCE_SESSION_CACHE_MB", 2048)
# A request body (JSON or .npz) and the decoded tensors it holds, at most; the outputs of one run, at most.
INFERENCE_MAX_REQUEST_BYTES = env_int("INFERENCE_MAX_REQUEST_BYTES", 16 * 1024 * 1024)
INFERENCE_MAX_OUTPUT_BYTES = env_int("INFERENCE_MAX_OUTPUT_BYTES", 64 * 1024 * 1024)
# The web server's request limit (gunicorn's --timeout, gpux_portal/gunicorn_conf.py; a proxy in front waits at
# least as long) and its threads per process. A synchronous wait must end well before the limit: a caller's
# ``timeout`` past WEB_TIMEOUT_SECONDS - WEB_ANSWER_MARGIN_SECONDS is refused (400 naming ``timeout``).
WEB_TIMEOUT_SECONDS = env_int("GPUX_WEB_TIMEOUT", 60)
WEB_ANSWER_MARGIN_SECONDS = 10
# How long a synchronous prediction waits by default, and at most, before answering 202 with the job's URL.
INFERENCE_SYNC_TIMEOUT_SECONDS = float(env("INFERENCE_SYNC_TIMEOUT_SECONDS", "30"))
# Online serving (apps/inference/online/): synchronous predictions through Redis to a serving loop in each inference
# worker process, no job row. Off: every prediction is a durable job (docs/operator/inference.md).
INFERENCE_ONLINE_SERVING = env_bool("INFERENCE_ONLINE_SERVING", True)
# The predict routes answered past DRF's dispatch for callers this process already let through
# (apps/inference/api/predict_lane.py); false: every request takes the route's full way.
INFERENCE_PREDICT_LANE = env_bool("INFERENCE_PREDICT_LANE", True)
INFERENCE_SYNC_TIMEOUT_MAX_SECONDS = float(env("INFERENCE_SYNC_TIMEOUT_MAX_SECONDS", "120"))
# Synchronous waits one web process holds at once (0: no limit). gunicorn_conf sets it to its threads less a
# reserve, so pages always have threads; a prediction past it answers 202 with its job's URL without waiting.
INFERENCE_SYNC_WAITS_PER_PROCESS = env_int("INFERENCE_SYNC_WAITS_PER_PROCESS", 0)
# A pool process of a worker that runs models may hold this much address space (RLIMIT_AS, MiB; 0: no limit). A
# model that allocates past it fails its job with the reason and the process is replaced. Unset: the host's
# memory (or its cgroup's limit) x INFERENCE_WORKER_MEMORY_FRACTION / the pool's processes, at least 1024 MiB, on
# workers without a GPU (apps/inference/worker_memory.py, docs/operator/inference.md).
INFERENCE_WORKER_MEMORY_MB = env_int("INFERENCE_WORKER_MEMORY_MB", None)
INFERENCE_WORKER_MEMORY_FRACTION = float(env("INFERENCE_WORKER_MEMORY_FRACTION", "0.5"))
# Webhooks: attempts and the first retry delay (doubling), seconds a receiver gets to answer.
INFERENCE_WEBHOOK_ATTEMPTS = env_int("INFERENCE_WEBHOOK_ATTEMPTS", 5)
INFERENCE_WEBHOOK_RETRY_SECONDS = float(env("INFERENCE_WEBHOOK_RETRY_SECONDS", "5"))
INFERENCE_WEBHOOK_TIMEOUT_SECONDS = float(env("INFERENCE_WEBHOOK_TIMEOUT_SECONDS", "10"))
# Dynamic batching: how often the batching worker looks at what it buffered (seconds), most requests buffered.
INFERENCE_BATCH_TICK_SECONDS = float(env("INFERENCE_BATCH_TICK_SECONDS", "0.002"))
INFERENCE_BATCH_BUFFER = env_int("INFERENCE_BATCH_BUFFER", 256)
# Batch jobs (docs/user/batch-jobs.md): the largest file a batch job takes (JSONL, CSV or NPZ; an NPZ's arrays
# are held to it too), and how long one attempt may run (the reaper re-sends a job whose worker was lost only
# after this plus JOBS_REAPER_GRACE_SECONDS without a heartbeat; the next attempt resumes where it stopped).
INFERENCE_MAX_BATCH_FILE_BYTES = env_int("INFERENCE_MAX_BATCH_FILE_BYTES", INFERENCE_MAX_REQUEST_BYTES * 64)
INFERENCE_BATCH_TIME_LIMIT_SECONDS = env_int("INFERENCE_BATCH_TIME_LIMIT_SECONDS", 3600)
# Webhook receivers on private, loopback or link-local addresses must be allow-listed (host names or CIDR).
INFERENCE_WEBHOOK_ALLOWED_NETWORKS = env_list("GPUX_WEBHOOK_ALLOWED_NETWORKS")
# Performance cards (docs/user/performance-card.md): publishing a version queues a job that measures it on a worker
# (off in tests, where the catalog publishes many versions; a test turns it on), within a budget of seconds, trying
# batch sizes 1, 2, 4, ... up to the maximum while throughput keeps rising.
INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = env_bool("INFERENCE_PERFORMANCE_CARD_ON_PUBLISH", default=DJANGO_ENV != "test")
INFERENCE_PERFORMANCE_BUDGET_SECONDS = float(env("INFERENCE_PERFORMANCE_BUDGET_SECONDS", "4"))
# The whole card (load, warm-up, measuring) on the ``checks`` queue; every run is stopped when it is spent.
INFERENCE_PERFORMANCE_TIME_LIMIT_SECONDS = env_int("INFERENCE_PERFORMANCE_TIME_LIMIT_SECONDS", 120)
INFERENCE_PERFORMANCE_MAX_BATCH = env_int("INFERENCE_PERFORMANCE_MAX_BATCH", 64)
# How long the "try it" form waits for an answer before showing "still running" with the job's link.
INFERENCE_PAGE_WAIT_SECONDS = float(env("INFERENCE_PAGE_WAIT_SECONDS", "10"))

# --- the broker's visibility timeout (docs/operator/jobs.md, "Messages, prefetching and the visibility timeout") -----
# Redis gives a delivered message that was not acknowledged to another worker after the visibility timeout. Jobs
# acknowledge late (after the attempt), so the timeout must outlast the longest attempt, hard limit and reaper grace
# included, or Redis hands a running job's message out again (harmless, the claim is conditional, but wasted).
# JOBS_MAX_TIME_LIMIT_SECONDS is that longest job time limit: by default the longest of the kinds' limits above.
# The other side: a worker killed with messages prefetched leaves them invisible this long; the reaper re-sends
# their jobs after JOBS_RESEND_AFTER_SECONDS instead.
JOBS_MAX_TIME_LIMIT_SECONDS = env_int(
    "JOBS_MAX_TIME_LIMIT_SECONDS",
    max(3600, REGISTRY_SYNC_TIME_LIMIT_SECONDS, INFERENCE_BATCH_TIME_LIMIT_SECONDS),
)
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": JOBS_MAX_TIME_LIMIT_SECONDS + JOBS_HARD_LIMIT_MARGIN_SECONDS + JOBS_REAPER_GRACE_SECONDS,
    }
