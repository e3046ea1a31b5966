"""The metrics relay: Airflow's StatsD on the task's loopback to CloudWatch, under MWAA's names.

``python runtime.pyz metrics-relay``, started by the bootstrap of the one container per task
whose ``OPENMWAA_METRICS`` says ``"relay": true``. Airflow sends StatsD lines (tags in the
name, InfluxDB style: ``airflow.ti_failures,dag_id=d,task_id=t:1|c``) to 127.0.0.1:<port>;
the relay keeps the allowed ones (:mod:`.metric_names`), sums each minute per metric and
dimensions into a CloudWatch statistic set (SampleCount, Sum, Minimum, Maximum) and publishes
it with PutMetricData.

The core (:func:`parse_line`, :class:`Window`, :class:`Publisher`) is pure; :func:`serve` is
the adapter: the UDP socket, the minute clock, boto3 and the signals. Nothing here stops
Airflow: bad lines are counted, CloudWatch errors are retried and logged, and the relay keeps
going. On SIGTERM it publishes at once, then every :data:`DRAIN_FLUSH_SECONDS` while the
process that started it drains (the worker finishes its tasks); it publishes what is left and
exits when that process is gone, or at SIGUSR1 (the worker's bootstrap sends it once Celery
exited, before the container's init stops everything).
"""

from __future__ import annotations

import logging
import math
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from . import config, contracts, metric_names
from .metric_names import COUNTER, GAUGE, MetricRule

LOG = logging.getLogger("openmwaa.metrics")

WINDOW_SECONDS = 60
"""One statistic set per metric and dimensions per minute (CloudWatch's finest standard
resolution), on the minute, stamped with the minute it covers."""
DRAIN_FLUSH_SECONDS = 10
"""After SIGTERM: publish this often, since the container may be stopped at any moment."""
MAX_SERIES = 500
"""Distinct metric and dimension sets one window keeps; more are dropped and counted, which
bounds the cost of a flood of per-DAG series (each is a custom metric)."""
MAX_DATUMS_PER_CALL = 1000
"""PutMetricData's limit per request."""
KEPT_WINDOWS = 2
"""Windows kept for the next flush when CloudWatch cannot be reached."""
ATTEMPTS = 3
"""PutMetricData tries per request within one flush (backoff 1 s, 2 s)."""
MAX_DATAGRAM = 65535
BATCH_SECONDS = 0.05
"""After reading, the relay waits this long before it reads again, so that a quiet Airflow's
lines are read a few at a time (a third of the CPU of one wake-up per line); 2,000 lines a
second are then 100 datagrams in the socket's buffer, which holds several hundred even at
Linux's default ``rmem_max``."""

_KINDS = {"c": COUNTER, "g": GAUGE, "ms": metric_names.TIMER, "h": metric_names.TIMER}
_TAG_DIMENSIONS = {"dag_id": contracts.DAG_DIMENSION, "task_id": contracts.TASK_DIMENSION}


@dataclass(frozen=True)
class Sample:
    """One StatsD line: Airflow's name without the prefix, the value, ``c``/``g``/``ms``, the
    sample rate, the tags, and for a gauge whether the value is a change (``+3``, ``-2``)."""

    name: str
    value: float
    kind: str
    rate: float = 1.0
    tags: tuple[tuple[str, str], ...] = ()
    delta: bool = False


def parse_line(line: str, prefix: str = config.STATSD_PREFIX) -> Sample | None:
    """Parse ``<prefix>.<name>[,k=v...]:<value>|<type>[|@rate][|#k:v,...]``.

    None for a metric without the prefix (not Airflow's); ValueError for a malformed line.
    """
    head, sep, rest = line.partition(":")
    if not sep:
        raise ValueError("no ':'")
    name, *tag_parts = head.split(",")
    if not name.startswith(prefix + "."):
        return None
    fields = rest.split("|")
    if len(fields) < 2:
        raise ValueError("no '|type'")
    kind = _KINDS.get(fields[1])
    if kind is None:
        raise ValueError(f"type {fields[1]!r}")
    text = fields[0]
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    rate = 1.0
    tags = [_tag(part, "=") for part in tag_parts]
    for extra in fields[2:]:
        if extra.startswith("@"):
            rate = float(extra[1:])
            if not 0 < rate <= 1:
                raise ValueError(f"sample rate {rate}")
        elif extra.startswith("#"):
            tags.extend(_tag(part, ":") for part in extra[1:].split(",") if part)
    return Sample(
        name[len(prefix) + 1 :],
        value,
        kind,
        rate,
        tuple(tags),
        kind == GAUGE and text[:1] in "+-",
    )


def _value(rest: str) -> tuple[float, float, bool]:
    """``<value>|<type>[|@rate]``: the value, the sample rate, whether it is a gauge change."""
    fields = rest.split("|")
    if len(fields) < 2 or fields[1] not in _KINDS:
        raise ValueError("type")
    value = float(fields[0])
    rate = float(fields[2][1:]) if len(fields) > 2 and fields[2][:1] == "@" else 1.0
    if not math.isfinite(value) or not 0 < rate <= 1:
        raise ValueError("value or rate")
    return value, rate, fields[1] == "g" and fields[0][:1] in "+-"


def _tag(part: str, sep: str) -> tuple[str, str]:
    key, found, value = part.partition(sep)
    if not found or not key:
        raise ValueError(f"tag {part!r}")
    return key, value


def parse_datagram(data: bytes) -> tuple[list[Sample], int]:
    """The samples of one datagram (one or more lines) and how many lines were malformed."""
    samples: list[Sample] = []
    bad = 0
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            sample = parse_line(line.strip())
        except ValueError:
            bad += 1
            continue
        if sample is not None:
            samples.append(sample)
    return samples, bad


SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]
"""(MWAA metric name, unit, dimensions without Environment)."""


def series(rule: MetricRule, tags: Mapping[str, str]) -> SeriesKey | None:
    """The series a sample of ``rule`` with ``tags`` adds to; None when a per-DAG rule's
    sample lacks its DAG or task id."""
    dimensions = metric_names.fixed_dimensions(rule)
    for tag, dimension in _TAG_DIMENSIONS.items():
        wanted = rule.per_dag if dimension == contracts.DAG_DIMENSION else rule.per_task
        if wanted:
            value = tags.get(tag, "")
            if not value:
                return None
            dimensions[dimension] = value[:1024]
    return rule.name, rule.unit, tuple(sorted(dimensions.items()))


@dataclass
class Stats:
    """A CloudWatch statistic set."""

    count: float = 0.0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float, weight: float = 1.0) -> None:
        """Add one observation of ``value`` standing for ``weight`` (1 / sample rate)."""
        self.count += weight
        self.total += value * weight
        self.low = min(self.low, value)
        self.high = max(self.high, value)


@dataclass
class Window:
    """One minute of allowed samples, summed per series; pure."""

    rules: Mapping[str, Sequence[MetricRule]]
    """Allowed rules by Airflow name."""
    max_series: int = MAX_SERIES
    stats: dict[SeriesKey, Stats] = field(default_factory=dict)
    malformed: int = 0
    over_cap: int = 0
    gauges: dict[SeriesKey, float] = field(default_factory=dict)
    """Each gauge's last value, across windows, for ``+n``/``-n`` changes."""

    _targets: dict[str, tuple[tuple[SeriesKey, MetricRule], ...]] = field(default_factory=dict)
    """The series of each name-and-tags already seen (most lines repeat one)."""

    def add(self, sample: Sample) -> None:
        """Count ``sample`` into its series (nothing for a metric not allowed)."""
        self._add(self._resolve(sample), sample.value, sample.rate, sample.delta)

    def add_datagram(self, data: bytes) -> None:
        """Parse and add one datagram's lines; a line whose name and tags were seen before
        skips their parsing."""
        for raw in data.decode("utf-8", "replace").splitlines():
            line = raw.strip()
            head, _, rest = line.partition(":")
            targets = self._targets.get(head)
            if targets is None or "|#" in rest:
                if not line:
                    continue
                try:
                    sample = parse_line(line)
                except ValueError:
                    self.malformed += 1
                    continue
                targets = self._resolve(sample) if sample is not None else ()
                if "|#" not in rest:
                    if len(self._targets) >= 4 * self.max_series:
                        self._targets.clear()
                    self._targets[head] = targets
                if sample is not None:
                    self._add(targets, sample.value, sample.rate, sample.delta)
            elif targets:
                try:
                    value, rate, delta = _value(rest)
                except ValueError:
                    self.malformed += 1
                    continue
                self._add(targets, value, rate, delta)

    def _resolve(self, sample: Sample) -> tuple[tuple[SeriesKey, MetricRule], ...]:
        rules = self.rules.get(sample.name, ())
        tags = dict(sample.tags) if rules else {}
        return tuple((key, rule) for rule in rules if (key := series(rule, tags)) is not None)

    def _add(
        self,
        targets: Iterable[tuple[SeriesKey, MetricRule]],
        value: float,
        rate: float,
        delta: bool,
    ) -> None:
        for key, rule in targets:
            stats = self.stats.get(key)
            if stats is None:
                if len(self.stats) >= self.max_series:
                    self.over_cap += 1
                    continue
                stats = self.stats[key] = Stats()
            if rule.kind == GAUGE:
                level = value + self.gauges.get(key, 0.0) if delta else value
                if len(self.gauges) < self.max_series or key in self.gauges:
                    self.gauges[key] = level
                stats.add(level)
            else:
                stats.add(value, 1.0 / rate)

    def close(self, environment: str, timestamp: float) -> tuple[list[dict[str, Any]], int, int]:
        """The window's PutMetricData datums, its malformed line count and its dropped series
        count; the window starts anew (gauges' last values stay)."""
        datums = [
            datum(key, stats, environment, timestamp)
            for key, stats in self.stats.items()
            if stats.count > 0
        ]
        counts = self.malformed, self.over_cap
        self.stats, self.malformed, self.over_cap = {}, 0, 0
        return datums, *counts


def datum(key: SeriesKey, stats: Stats, environment: str, timestamp: float) -> dict[str, Any]:
    """A PutMetricData datum of one series."""
    name, unit, dimensions = key
    return {
        "MetricName": name,
        "Dimensions": [{"Name": contracts.ENVIRONMENT_DIMENSION, "Value": environment}]
        + [{"Name": k, "Value": v} for k, v in dimensions],
        "Timestamp": datetime.fromtimestamp(timestamp, timezone.utc),  # noqa: UP017 - Python 3.10 images
        "StatisticValues": {
            "SampleCount": stats.count,
            "Sum": stats.total,
            "Minimum": stats.low,
            "Maximum": stats.high,
        },
        "Unit": unit,
    }


def allowed_rules(names: Iterable[str]) -> dict[str, tuple[MetricRule, ...]]:
    """The rules of the allowed MWAA names, by Airflow name."""
    by_airflow: dict[str, tuple[MetricRule, ...]] = {}
    for rule in metric_names.rules_for(names):
        by_airflow[rule.airflow] = (*by_airflow.get(rule.airflow, ()), rule)
    return by_airflow


class Client(Protocol):
    """The part of boto3's CloudWatch client the relay uses."""

    def put_metric_data(self, **kwargs: Any) -> Any: ...


def chunks(datums: Sequence[dict[str, Any]], size: int = MAX_DATUMS_PER_CALL) -> list[list[Any]]:
    """``datums`` in requests of at most ``size``."""
    return [list(datums[i : i + size]) for i in range(0, len(datums), size)]


def _retryable(error: Exception) -> bool:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return True
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
    return "Throttl" in code or not isinstance(status, int) or status >= 500 or status == 429


@dataclass
class Publisher:
    """Sends windows to CloudWatch: retries within a flush, keeps what failed for the next
    one (:data:`KEPT_WINDOWS` at most), drops what CloudWatch refuses as invalid."""

    client: Client
    namespace: str
    sleep: Callable[[float], None] = time.sleep
    attempts: int = ATTEMPTS
    pending: list[list[dict[str, Any]]] = field(default_factory=list)
    """Unsent windows' datums, oldest first."""
    calls: int = 0
    sent: int = 0

    def publish(self, datums: list[dict[str, Any]]) -> bool:
        """Send what is pending and ``datums``; True when nothing is left pending."""
        if datums:
            self.pending.append(datums)
        if len(self.pending) > KEPT_WINDOWS:
            lost = self.pending[:-KEPT_WINDOWS]
            del self.pending[:-KEPT_WINDOWS]
            LOG.error(
                "metrics: dropped %d unsent data points of %d older minutes",
                sum(map(len, lost)),
                len(lost),
            )
        kept: list[list[dict[str, Any]]] = []
        for window in self.pending:
            unsent = [c for c in chunks(window) if not self._send(c)]
            if unsent:
                kept.append([d for chunk in unsent for d in chunk])
        self.pending = kept
        return not kept

    def _send(self, chunk: list[dict[str, Any]]) -> bool:
        """True when sent or refused for good; False to keep it."""
        for attempt in range(self.attempts):
            try:
                self.calls += 1
                self.client.put_metric_data(Namespace=self.namespace, MetricData=chunk)
                self.sent += len(chunk)
                return True
            except Exception as error:
                if not _retryable(error):
                    LOG.error(
                        "metrics: CloudWatch refused %d data points, dropped: %s", len(chunk), error
                    )
                    return True
                if attempt + 1 == self.attempts:
                    LOG.error(
                        "metrics: PutMetricData failed %d times, keeping %d data points for the "
                        "next minute: %s",
                        self.attempts,
                        len(chunk),
                        error,
                    )
                    return False
                self.sleep(2.0**attempt)
        return False


def cloudwatch_client() -> Client:
    """boto3's CloudWatch client (the task role's credentials, the task's Region); our own
    retries only, short timeouts."""
    import boto3
    from botocore.config import Config

    retries: Any = {"total_max_attempts": 1}
    return boto3.client(  # type: ignore[no-any-return]
        "cloudwatch",
        config=Config(connect_timeout=5, read_timeout=10, retries=retries),
    )


def next_minute(now: float, interval: float = WINDOW_SECONDS) -> float:
    """The next wall-clock multiple of ``interval`` after ``now``."""
    return (math.floor(now / interval) + 1) * interval


def serve(
    settings: config.MetricsConfig,
    sock: socket.socket,
    publisher: Publisher,
    *,
    parent: int,
    clock: Callable[[], float] = time.time,
    stopping: Callable[[], bool] = lambda: False,
    parent_alive: Callable[[int], bool] | None = None,
    tick: float = 1.0,
    batch: float = BATCH_SECONDS,
) -> None:
    """Receive on ``sock`` and publish every minute (every :data:`DRAIN_FLUSH_SECONDS` once
    ``stopping()``) until the process ``parent`` is gone, then publish what is left; the
    clock, the signals and the parent are checked every ``tick`` seconds at least, and the
    socket read at most every ``batch`` seconds."""
    alive = parent_alive or (lambda pid: os.getppid() == pid)
    window = Window(allowed_rules(settings.metrics))
    now = clock()
    window_start = math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS
    deadline = next_minute(now)
    draining = False
    while True:
        now = clock()
        gone = not alive(parent)
        if stopping() and not draining:
            draining, deadline = True, now
        if now >= deadline or gone:
            _receive(sock, window)
            _flush(window, settings.environment, window_start, publisher)
            if gone:
                return
            window_start = math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS
            deadline = now + DRAIN_FLUSH_SECONDS if draining else next_minute(now)
            continue
        try:
            ready, _, _ = select.select([sock], [], [], min(deadline - now, tick))
        except InterruptedError:
            continue
        if ready:
            _receive(sock, window)
            time.sleep(batch)


def _receive(sock: socket.socket, window: Window, most: int = 1000) -> None:
    """Add what ``sock`` holds, ``most`` datagrams at most (the clock is checked between)."""
    for _ in range(most):
        try:
            window.add_datagram(sock.recv(MAX_DATAGRAM))
        except BlockingIOError:
            return


def _flush(window: Window, environment: str, timestamp: float, publisher: Publisher) -> None:
    datums, malformed, over_cap = window.close(environment, timestamp)
    if malformed:
        LOG.warning("metrics: skipped %d malformed StatsD lines", malformed)
    if over_cap:
        LOG.warning(
            "metrics: dropped %d samples beyond %d series this minute", over_cap, MAX_SERIES
        )
    first = publisher.calls == 0
    if publisher.publish(datums) and first and datums:
        LOG.info("metrics: published %d data points to CloudWatch", len(datums))


def main(env: Mapping[str, str]) -> int:
    """Run the relay from ``OPENMWAA_METRICS`` until its parent is gone or SIGUSR1 (the
    bootstrap's "the worker has exited"); 0 then, 78 without a valid ``OPENMWAA_METRICS``,
    1 on an error (logged; Airflow goes on without metrics)."""
    try:
        settings = config.parse_metrics(env.get(contracts.METRICS_VARIABLE))
    except config.ConfigError as error:
        LOG.error("metrics relay: %s", error)
        return 78
    if settings is None:
        LOG.error("metrics relay: %s is not set", contracts.METRICS_VARIABLE)
        return 78
    logging.getLogger("botocore").setLevel(logging.WARNING)
    parent = os.getppid()
    stop: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, lambda number, _frame: stop.append(number))
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)  # kernel-capped
        sock.bind(("127.0.0.1", settings.port))
        sock.setblocking(False)
        publisher = Publisher(cloudwatch_client(), settings.namespace)
        LOG.info(
            "metrics relay on 127.0.0.1:%d: namespace %s, %d metrics allowed",
            settings.port,
            settings.namespace,
            len({rule.name for rule in metric_names.rules_for(settings.metrics)}),
        )
        serve(
            settings,
            sock,
            publisher,
            parent=parent,
            stopping=lambda: bool(stop),
            parent_alive=lambda pid: os.getppid() == pid and signal.SIGUSR1 not in stop,
        )
    except Exception:
        LOG.exception("metrics relay: stopped by an error; Airflow's metrics are not published")
        return 1
    LOG.info("metrics relay: stopped (%d data points in %d calls)", publisher.sent, publisher.calls)
    sys.stdout.flush()
    return 0
