"""Data model: market data and execution telemetry in, snapshots and the sizing ledger out.

Snapshots and ledger rows are append-only (see AppendOnlyModel); policy changes keep history.
"""
from datetime import datetime

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords

SYMBOL_PATTERN = r"^[A-Z0-9]{2,32}$"
symbol_validator = RegexValidator(SYMBOL_PATTERN, "A symbol is 2-32 upper-case letters or digits, e.g. BTCUSDC.")

PRICE = {"max_digits": 30, "decimal_places": 12}


class Mode(models.TextChoices):
    LIVE = "live", "live: factor applied"
    SHADOW = "shadow", "shadow: factor recorded, 1.0 applied"
    OFF = "off", "off: layer disabled"


class Side(models.TextChoices):
    BUY = "buy"
    SELL = "sell"


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete a row of an append-only table."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: update refused.")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: delete refused.")

    _raw_delete = delete

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: update refused.")

    def bulk_create(self, objs, *args, update_conflicts=False, **kwargs):
        if update_conflicts:
            raise AppendOnlyError(f"{self.model.__name__} rows are append-only: upsert refused.")
        return super().bulk_create(objs, *args, **kwargs)

    def update_or_create(self, *args, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: update_or_create refused.")


class AppendOnlyModel(models.Model):
    """Rows can be inserted, never changed or deleted (the audit trail depends on it)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True
        base_manager_name = "objects"  # Django's internal base manager must refuse updates too

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only: update refused.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only: delete refused.")


class Symbol(models.Model):
    name = models.CharField(max_length=32, unique=True, validators=[symbol_validator])
    # What a position is accounted in (quote) and what a base-asset fee is converted from; blank only on
    # symbols registered before assets were recorded whose name could not be split (see domain.assets).
    base_asset = models.CharField(max_length=16, blank=True, default="")
    quote_asset = models.CharField(max_length=16, blank=True, default="")
    is_active = models.BooleanField(default=True, help_text="Only active symbols are recomputed.")
    mode = models.CharField(
        max_length=8, choices=Mode.choices, blank=True, default="",
        help_text="Per-symbol mode; blank follows the global policy.",
    )
    capital_base = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)],
        help_text="Capital allocated to this symbol (quote currency), the base of its equity curve; "
        "blank uses SIZING_CAPITAL_BASE.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["created_at"])

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Candle(models.Model):
    """One OHLCV bar. Prices are float64, the precision the reference libraries compute in."""

    # No database-level FK: a per-row deferred FK check halves bulk-import throughput (1M-bar
    # COPY). Importers resolve or create the symbol first, and the ORM still cascades deletes.
    symbol = models.ForeignKey(Symbol, on_delete=models.CASCADE, related_name="candles", db_constraint=False)
    interval = models.CharField(max_length=8)
    open_time = models.DateTimeField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["symbol", "interval", "open_time"], name="candle_unique_bar"),
        ]

    def __str__(self):
        return f"{self.symbol_id} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


class Order(models.Model):
    class Status(models.TextChoices):
        NEW = "new"
        PARTIALLY_FILLED = "partially_filled"
        FILLED = "filled"
        CANCELED = "canceled"
        REJECTED = "rejected"
        EXPIRED = "expired"

    class Liquidity(models.TextChoices):
        MAKER = "maker", "maker (post-only / passive)"
        TAKER = "taker", "taker (aggressive)"

    symbol = models.ForeignKey(Symbol, on_delete=models.CASCADE, related_name="orders")
    client_order_id = models.CharField(max_length=64)
    exchange_order_id = models.CharField(max_length=64, blank=True, default="")
    side = models.CharField(max_length=4, choices=Side.choices)
    liquidity = models.CharField(max_length=5, choices=Liquidity.choices, default=Liquidity.TAKER)
    maker_fallback = models.BooleanField(
        default=False, help_text="A maker order that was re-sent as taker after it did not fill."
    )
    requested_qty = models.DecimalField(**PRICE, validators=[MinValueValidator(0)])
    filled_qty = models.DecimalField(**PRICE, default=0, validators=[MinValueValidator(0)])
    arrival_price = models.DecimalField(
        **PRICE, help_text="Mid price when the engine decided to trade: the slippage benchmark."
    )
    limit_price = models.DecimalField(**PRICE, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    submitted_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["symbol", "client_order_id"], name="order_unique_client_id"),
        ]
        indexes = [models.Index(fields=["symbol", "submitted_at"], name="order_symbol_time")]

    def __str__(self):
        return f"{self.symbol_id} {self.client_order_id}"


class Fill(models.Model):
    symbol = models.ForeignKey(Symbol, on_delete=models.CASCADE, related_name="fills")
    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="fills")
    order_ref = models.CharField(
        max_length=64, blank=True, default="",
        help_text="The order id the source gave (exchange orderId or client id), kept even when no Order matches.",
    )
    trade_id = models.CharField(max_length=64, help_text="The exchange's trade id.")
    side = models.CharField(max_length=4, choices=Side.choices)
    qty = models.DecimalField(**PRICE, validators=[MinValueValidator(0)])
    price = models.DecimalField(**PRICE)
    arrival_price = models.DecimalField(
        **PRICE, null=True, blank=True, help_text="Slippage benchmark when the fill has no order."
    )
    fee = models.DecimalField(**PRICE, default=0)
    fee_asset = models.CharField(max_length=16, blank=True, default="")
    is_maker = models.BooleanField(default=False)
    realized_pnl = models.DecimalField(
        **PRICE, null=True, blank=True, help_text="Realized PnL in the quote currency, fees not deducted."
    )
    executed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["symbol", "trade_id"], name="fill_unique_trade")]
        indexes = [models.Index(fields=["symbol", "executed_at"], name="fill_symbol_time")]

    def __str__(self):
        return f"{self.symbol_id} {self.trade_id}"


class RecomputeRun(models.Model):
    """One recompute pass: what triggered it, which bucket, and how each symbol fared."""

    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        PARTIAL = "partial", "partial: some symbols failed"
        FAILED = "failed"
        SKIPPED = "skipped", "skipped: another run held the bucket"

    trigger = models.CharField(max_length=16, default="manual")
    as_of = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    symbols_total = models.PositiveIntegerField(default=0)
    symbols_ok = models.PositiveIntegerField(default=0)
    symbols_failed = models.PositiveIntegerField(default=0)
    symbols_existing = models.PositiveIntegerField(
        default=0, help_text="Computed, but this bucket already had their snapshot (an earlier run's): "
                             "kept as it was, since snapshots are never replaced.",
    )
    errors = models.JSONField(default=dict, blank=True, help_text="{symbol: reason} for each failure.")
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.JSONField(
        default=list, blank=True, help_text="Indexes of recorded chunks: a redelivered chunk is recorded once."
    )
    task_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # Two beats, or one beat firing twice, cannot start two scheduled runs for one bucket.
            models.UniqueConstraint(
                fields=["as_of"], condition=models.Q(trigger="beat"), name="recompute_one_beat_run_per_bucket"
            ),
        ]

    def __str__(self):
        return f"run {self.pk} {self.as_of:%Y-%m-%d %H:%M} {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class SizingSnapshot(AppendOnlyModel):
    """A symbol's metrics, stack multipliers, score and size factor for one as-of bucket.

    Inputs are the closed candles and the fills before `as_of`, so any worker computing the
    same bucket gets the same numbers. Metric fields are null where the data was too thin.
    """

    class Status(models.TextChoices):
        OK = "ok", "ok: every component had data"
        PARTIAL = "partial", "partial: some components lacked data"
        STALE_INPUT = "stale_input", "stale input: the candle feed stopped; neutral stack and factor"
        NO_DATA = "no_data", "no data: neutral factor"

    symbol = models.ForeignKey(Symbol, on_delete=models.PROTECT, related_name="snapshots")
    as_of = models.DateTimeField(help_text="Start of the recompute bucket; inputs are strictly before it.")
    computed_at = models.DateTimeField()
    computed_live = models.BooleanField(
        default=True,
        help_text="Computed as its bucket happened; false for a backfill (recompute --as-of in the past).",
    )
    run = models.ForeignKey(RecomputeRun, on_delete=models.PROTECT, null=True, blank=True, related_name="snapshots")
    # Inputs
    candle_count = models.PositiveIntegerField(default=0, help_text="Closed hourly bars in the lookback.")
    fill_count = models.PositiveIntegerField(default=0)
    order_count = models.PositiveIntegerField(default=0)
    active_days = models.PositiveIntegerField(
        default=0, help_text="UTC days of the Sharpe window with a fill or an open position.",
    )
    last_candle_at = models.DateTimeField(null=True, blank=True, help_text="When the newest closed candle closed.")
    last_fill_at = models.DateTimeField(null=True, blank=True, help_text="The newest fill before as_of.")
    last_close = models.FloatField(null=True, blank=True)
    atr_pct = models.FloatField(null=True, blank=True)
    atr_regime_ratio = models.FloatField(null=True, blank=True)
    realized_volatility = models.FloatField(null=True, blank=True)
    sharpe_7d = models.FloatField(null=True, blank=True, help_text="Daily Sharpe of the symbol's equity, 7 days.")
    market_sharpe_7d = models.FloatField(null=True, blank=True, help_text="Daily Sharpe of the close, 7 days.")
    max_drawdown = models.FloatField(null=True, blank=True)
    slippage_bps = models.FloatField(null=True, blank=True)
    fill_rate = models.FloatField(null=True, blank=True)
    maker_ratio = models.FloatField(null=True, blank=True)
    # The position at as_of, in the quote currency (domain/accounting.py); null on snapshots before it was kept
    capital = models.FloatField(null=True, blank=True, help_text="What the equity's returns are measured against.")
    position_qty = models.FloatField(null=True, blank=True, help_text="Signed: long > 0.")
    avg_cost = models.FloatField(null=True, blank=True)
    realized_pnl = models.FloatField(null=True, blank=True, help_text="By average cost, before fees.")
    fees_quote = models.FloatField(null=True, blank=True, help_text="Fees converted into the quote currency.")
    unconverted_fee_count = models.PositiveIntegerField(
        default=0, help_text="Fees in an asset with no price in the quote currency: kept out of fees_quote.",
    )
    unrealized_pnl = models.FloatField(null=True, blank=True, help_text="Marked at the last closed candle.")
    equity = models.FloatField(null=True, blank=True, help_text="capital + realized - fees + unrealized.")
    source_realized_pnl = models.FloatField(
        null=True, blank=True, help_text="The sum of the realized PnL the sources reported, where they did.",
    )
    # Existing stack
    inverse_vol_multiplier = models.FloatField(default=1.0)
    regime_multiplier = models.FloatField(default=1.0)
    sharpe_multiplier = models.FloatField(default=1.0)
    # Intelligence layer
    score = models.FloatField(default=0.0)
    components = models.JSONField(default=dict)
    raw_size_factor = models.FloatField(default=1.0, help_text="Factor from the score before the step limit.")
    size_factor = models.FloatField(default=1.0, help_text="Persisted factor after the step limit.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["symbol", "as_of"], name="snapshot_unique_bucket"),
        ]
        indexes = [
            models.Index(fields=["symbol", "-as_of"], name="snapshot_symbol_latest"),
            models.Index(fields=["-as_of", "-id"], name="snapshot_as_of_id"),  # history across symbols
        ]
        get_latest_by = "as_of"

    def __str__(self):
        return f"{self.symbol_id} @ {self.as_of:%Y-%m-%d %H:%M} x{self.size_factor:.2f}"


class GlobalPolicy(models.Model):
    """The single row holding the layer's global mode (absent until first set: SIZING_DEFAULT_MODE)."""

    SINGLETON_PK = 1

    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.LIVE)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "global policy"

    def __str__(self):
        return f"global mode {self.mode}"


def _override_active_at(now: datetime) -> models.Q:
    """The one rule for an override in force: not revoked and not expired (Override.is_active, in Python)."""
    return models.Q(revoked_at__isnull=True) & (models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class OverrideQuerySet(models.QuerySet):
    def active(self, now: datetime):
        """Overrides in force at `now`."""
        return self.filter(_override_active_at(now))

    def with_active(self, now: datetime):
        """Each override annotated with `active`: whether it is in force at `now`."""
        return self.annotate(active=models.ExpressionWrapper(_override_active_at(now),
                                                             output_field=models.BooleanField()))


class Override(models.Model):
    """A risk manager's pin of one symbol's factor and/or mode, with reason and expiry."""

    objects = OverrideQuerySet.as_manager()

    symbol = models.ForeignKey(Symbol, on_delete=models.PROTECT, related_name="overrides")
    pinned_factor = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    mode = models.CharField(max_length=8, choices=Mode.choices, blank=True, default="")
    reason = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        indexes = [models.Index(fields=["symbol", "-created_at"], name="override_symbol_latest")]

    def __str__(self):
        return f"override {self.symbol_id}: factor={self.pinned_factor} mode={self.mode or '-'}"

    def is_active(self, now: datetime) -> bool:
        """In force at `now`: the same rule as OverrideQuerySet.active, for an override already loaded."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class SizingDecision(AppendOnlyModel):
    """One size handed to the engine: the ledger row compliance reviews.

    gross_target: what the engine asked for. inverse_vol_size: gross_target after the
    inverse-volatility step. regime_multiplier, sharpe_multiplier: the other stack steps.
    intel_factor: the factor the intelligence layer proposed (recorded in every mode);
    applied_factor: the factor actually multiplied in (1.0 in shadow/off, or when stale).
    final_size = inverse_vol_size * regime_multiplier * sharpe_multiplier * applied_factor, unless that
    product is outside the total bound: then gross_target times the bound (unbounded_size keeps it).
    stale / fallback_reason: why a neutral factor was used. seq, prev_hash, row_hash: the
    per-symbol hash chain that makes edits, deletions and reordering detectable.
    """

    # Every index and foreign-key check here is paid on every size handed out: the hot path.
    # symbol and created_at are served by the composite indexes below; the foreign keys are
    # ORM-level only, because their targets can never disappear (snapshots are append-only,
    # overrides are revoked, not deleted, PROTECT refuses it in the ORM) and a database check
    # would lock the snapshot row on every insert.
    created_at = models.DateTimeField()
    symbol = models.CharField(max_length=32)
    gross_target = models.FloatField()
    inverse_vol_size = models.FloatField()
    regime_multiplier = models.FloatField()
    sharpe_multiplier = models.FloatField()
    intel_factor = models.FloatField()
    applied_factor = models.FloatField()
    final_size = models.FloatField()
    snapshot = models.ForeignKey(
        SizingSnapshot, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions",
        db_constraint=False,  # kept indexed: compliance lists the decisions sized with a snapshot
    )
    score = models.FloatField(null=True, blank=True)
    mode = models.CharField(max_length=8, choices=Mode.choices)
    override = models.ForeignKey(
        Override, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_constraint=False,
        db_index=False,
    )
    stale = models.BooleanField(default=False)
    fallback_reason = models.CharField(max_length=64, blank=True, default="")
    order_ref = models.CharField(max_length=128, blank=True, default="")
    caller = models.CharField(max_length=64, blank=True, default="")
    # Set when the decision was made during a database outage, journaled to local disk and
    # replayed into the ledger later (sizing_app.ledger.journal): the journal entry's id, unique.
    journal_ref = models.CharField(max_length=36, blank=True, default="")
    # The whole multiplier (final / gross) is bounded to [SIZING_TOTAL_MIN, SIZING_TOTAL_MAX]: the
    # size the stack gave before that bound, and whether it bit. Null on rows from before the bound.
    unbounded_size = models.FloatField(null=True, blank=True)
    total_bounded = models.BooleanField(null=True, blank=True)
    seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64)

    # Not a column: set on the instances sizing returns; True when the order (caller, order_ref)
    # had been sized before and this is its original decision, handed back instead of a new one.
    replayed = False

    class Meta:
        constraints = [
            # Two writers that read the same chain head cannot both append: one gets an
            # IntegrityError and retries on the new head, so the chain never forks.
            models.UniqueConstraint(fields=["symbol", "seq"], name="decision_chain_seq"),
            # A journaled decision is replayed once, however often the replay is interrupted.
            models.UniqueConstraint(fields=["journal_ref"], condition=~models.Q(journal_ref=""),
                                    name="decision_journal_ref"),
            # One decision per order: an engine retrying after a timeout gets the original size back
            # (sizing looks the key up when its INSERT hits this index), never a second one.
            models.UniqueConstraint(fields=["caller", "order_ref"], condition=~models.Q(order_ref=""),
                                    name="decision_one_per_order"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="decision_created_id"),  # cursor pages, dates
            # Admin search is exact or prefix on order_ref: pattern ops serve both on PostgreSQL.
            models.Index(fields=["order_ref"], name="decision_order_ref", opclasses=["varchar_pattern_ops"]),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.symbol} #{self.seq} {self.gross_target} -> {self.final_size}"
