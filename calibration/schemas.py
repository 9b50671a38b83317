"""The history CSV schemas, as data, and the reader that validates them up front.

Four files, any subset (see README "CSV schemas"): ``orders.csv``, ``contacts.csv``,
``returns.csv``, ``staffing.csv``. :func:`read_history` checks each file completely before anything
is fitted and raises :class:`HistoryError` naming the file, the column and up to three example rows
(with their line numbers in the file) for the first problem it finds:

* the file is missing, not a file, empty (no bytes, or a header and no rows) or larger than
  :data:`MAX_FILE_BYTES` (checked from its size before reading a byte);
* a required column is missing (extra columns are ignored);
* a required value is empty; a timestamp, date, number or yes/no value cannot be parsed;
* a number that must not be negative is negative, or any number is over 1e9 in magnitude;
* a timestamp or date outside 1990-01-01..2100-12-31, or a file (or the files together) spanning
  more than 3650 days: such rows are refused, not dropped, with their line numbers, so a stray
  placeholder date (1900-01-01, 9999-12-31) stops the calibration in seconds instead of stretching
  every fit over centuries;
* a value outside an allowed set (``channel``, ``delivery_status``, ``outcome``);
* two rows share an id but differ (conflicting duplicates). Rows that repeat another row exactly are
  dropped and counted (exports often repeat rows).

Timestamps are ISO 8601. A value with a UTC offset (``Z``, ``+01:00``, ``-0500``) is converted to
UTC; a value without one is local time in ``timezone`` (an IANA name, default ``UTC``), where an
ambiguous wall-clock time (the repeated hour when clocks go back) is taken as the first of the two
instants and a non-existent one (the skipped hour) is moved forward. Each file may mix offsets.
The frames hold timestamps as UTC; :meth:`History.local` gives them as naive local times in
``timezone``, which is the clock of the calibrated scenario (its days, weekdays and hours).

Line numbers count the header as line 1 and assume one record per line (no line breaks inside
quoted fields).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from sim.delivery import OUTCOMES
from sim.input_checks import EARLIEST_DATE, LATEST_DATE, MAX_MAGNITUDE
from sim.returns import RETURN_OUTCOMES

__all__ = [
    "CONTACT_CHANNELS",
    "FILES",
    "MAX_FILE_BYTES",
    "STAFFING_CHANNELS",
    "ColumnSpec",
    "FileSchema",
    "History",
    "HistoryError",
    "InputFile",
    "read_history",
    "schema_markdown",
]

MAX_FILE_BYTES = int(os.environ.get("CXSIM_MAX_CSV_BYTES", 1 << 30))
"""Largest CSV accepted (bytes): 1 GiB, or the ``CXSIM_MAX_CSV_BYTES`` environment variable.
A 1,000,000-row orders file is about 130 MB."""

EARLIEST_TS = pd.Timestamp(EARLIEST_DATE, tz="UTC")
LATEST_TS = pd.Timestamp(LATEST_DATE, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
MAX_SPAN_DAYS = 3650
"""Longest history (first to last timestamp of the files, days): the scenario horizon limit
(``Scenario.horizon_days`` <= 3650). Timestamps must lie within the dates a scenario may use
(:data:`sim.input_checks.EARLIEST_DATE` .. ``LATEST_DATE``) and numbers within
:data:`sim.input_checks.MAX_MAGNITUDE`, as in scenario files; checked while reading, before any fit."""

CONTACT_CHANNELS: tuple[str, ...] = ("chat", "email", "phone", "social", "bot")
"""Allowed ``contacts.channel`` values: the scenario channels, and ``bot`` for a contact handled
(contained) by self-service / the automated assistant."""
STAFFING_CHANNELS: tuple[str, ...] = ("chat", "email", "phone", "social", "tier2")

NA_VALUES = ["", "NA", "N/A", "n/a", "NULL", "null", "NaN", "nan", "None", "none", "NaT"]
"""Cell values read as missing."""

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
# an offset (or Z) right after the time part: "...10:00:00Z", "...10:00+01:00", "...10:00-0500"
_OFFSET_RE = r"\d(?:[zZ]|[+-]\d\d:?\d\d|[+-]\d\d)$"


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a history file.

    ``kind``: ``id`` (text identifier), ``text``, ``timestamp`` (ISO 8601 date-time), ``date``
    (ISO 8601 date; a date-time is accepted and its local date kept), ``number``, ``bool``
    (true/false, yes/no, 1/0, t/f, y/n) or ``enum`` (one of ``allowed``, case-insensitive;
    spaces and hyphens count as underscores).
    """

    name: str
    kind: str
    required: bool
    description: str
    nonnegative: bool = False
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileSchema:
    """A history file: its columns and what identifies a row (``key``), if anything."""

    name: str
    description: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = ()

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


FILES: dict[str, FileSchema] = {
    "orders": FileSchema(
        "orders",
        "One row per order.",
        (
            ColumnSpec("order_id", "id", True, "Unique order identifier."),
            ColumnSpec("customer_id", "id", True, "Customer identifier (a customer's first order in the file is taken as new)."),
            ColumnSpec("order_ts", "timestamp", True, "When the order was placed."),
            ColumnSpec("order_value", "number", True, "Gross merchandise value, in the scenario's currency.", nonnegative=True),
            ColumnSpec("promised_delivery_date", "date", False, "Delivery date promised at checkout."),
            ColumnSpec("shipped_ts", "timestamp", False, "When the parcel left the warehouse."),
            ColumnSpec("delivered_ts", "timestamp", False, "When it was delivered (empty if not, e.g. lost)."),
            ColumnSpec("delivery_status", "enum", False, "Carrier outcome.", allowed=OUTCOMES),
        ),
        key=("order_id",),
    ),
    "contacts": FileSchema(
        "contacts",
        "One row per customer contact (a chat, an email thread, a call, a social message, a bot conversation).",
        (
            ColumnSpec("contact_id", "id", True, "Unique contact identifier."),
            ColumnSpec("created_ts", "timestamp", True, "When the customer reached out (queue entry for calls and chats)."),
            ColumnSpec("channel", "enum", True, "chat, email, phone, social, or bot (contained by self-service).", allowed=CONTACT_CHANNELS),
            ColumnSpec("reason", "text", True, "Contact reason. The scenario's reasons (wismo, delivery_problem, damaged_item, product_question, return_refund, billing, warranty) are fitted per reason; other values count for channel-level fits only."),
            ColumnSpec("customer_id", "id", False, "Customer identifier."),
            ColumnSpec("order_id", "id", False, "The order the contact is about (links a contact to its trigger)."),
            ColumnSpec("answered_ts", "timestamp", False, "When an agent answered (first response for email)."),
            ColumnSpec("abandoned", "bool", False, "The customer hung up / left the chat before an answer."),
            ColumnSpec("handle_time_sec", "number", False, "Agent handle time, seconds.", nonnegative=True),
            ColumnSpec("resolved", "bool", False, "Resolved at this contact (no repeat contact needed)."),
            ColumnSpec("csat", "number", False, "Satisfaction score (kept for reference; not fitted).", nonnegative=True),
            ColumnSpec("wait_sec", "number", False, "Seconds waited before the answer or the abandonment (needed to fit patience from abandoned contacts).", nonnegative=True),
        ),
        key=("contact_id",),
    ),
    "returns": FileSchema(
        "returns",
        "One row per accepted return request.",
        (
            ColumnSpec("order_id", "id", True, "The returned order."),
            ColumnSpec("requested_ts", "timestamp", True, "When the return was requested."),
            ColumnSpec("outcome", "enum", True, "refund, exchange or store_credit.", allowed=RETURN_OUTCOMES),
            ColumnSpec("reason", "text", False, "Return reason (\"damaged\" marks the return of a damaged item)."),
            ColumnSpec("refunded_ts", "timestamp", False, "When the refund (or store credit) was issued."),
        ),
        key=("order_id", "requested_ts"),
    ),
    "staffing": FileSchema(
        "staffing",
        "Scheduled (paid) agents per interval and channel.",
        (
            ColumnSpec("interval_start", "timestamp", True, "Start of the interval (15, 30 or 60 minutes)."),
            ColumnSpec("channel", "enum", True, "chat, email, phone, social or tier2.", allowed=STAFFING_CHANNELS),
            ColumnSpec("agents", "number", True, "Agents scheduled (paid, before shrinkage).", nonnegative=True),
        ),
        key=("interval_start", "channel"),
    ),
}
"""The four history files and their columns."""


class HistoryError(Exception):
    """A history file cannot be used. ``str()`` is one readable message naming the file, the column
    and up to three example rows (line numbers as in the file, the header being line 1)."""

    def __init__(
        self, file: str | Path, column: str | None, message: str, examples: list[tuple[int, str]] | None = None
    ) -> None:
        self.file = str(file)
        self.column = column
        self.message = message
        self.examples = list(examples or [])[:3]
        where = f"{self.file}: column '{column}': " if column else f"{self.file}: "
        text = where + message
        if self.examples:
            shown = "; ".join(f"line {line}: {value!r}" for line, value in self.examples)
            text += f" (e.g. {shown})"
        super().__init__(text)


@dataclass
class InputFile:
    """What was read from one file (for the report and the provenance record)."""

    kind: str
    path: str
    sha256: str
    size_bytes: int
    rows_read: int
    rows: int
    duplicates_dropped: int
    first: str | None
    last: str | None
    columns_ignored: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "rows_read": self.rows_read,
            "rows": self.rows,
            "exact_duplicates_dropped": self.duplicates_dropped,
            "first": self.first,
            "last": self.last,
            "columns_ignored": self.columns_ignored,
        }


@dataclass
class History:
    """Validated history frames (``None`` for a file not given).

    Timestamp columns are ``datetime64[.., UTC]``; ``promised_delivery_date`` is a naive date
    (midnight); bool columns are pandas nullable ``boolean``; enum columns lower-case text. Each
    frame has a ``_line`` column (line number in its file).
    """

    orders: pd.DataFrame | None
    contacts: pd.DataFrame | None
    returns: pd.DataFrame | None
    staffing: pd.DataFrame | None
    timezone: str
    files: dict[str, InputFile]
    notes: list[str] = field(default_factory=list)

    def local(self, ts: pd.Series) -> pd.Series:
        """UTC timestamps as naive local times in :attr:`timezone` (the scenario's clock)."""
        return ts.dt.tz_convert(self.timezone).dt.tz_localize(None)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {k: v for k, v in (("orders", self.orders), ("contacts", self.contacts), ("returns", self.returns), ("staffing", self.staffing)) if v is not None}


# ----------------------------------------------------------------------------- helpers


def _examples(df: pd.DataFrame, mask: pd.Series | np.ndarray, column: str) -> list[tuple[int, str]]:
    rows = df.loc[np.asarray(mask, dtype=bool), ["_line", column]].head(3)
    return [(int(line), "" if pd.isna(v) else str(v)) for line, v in zip(rows["_line"], rows[column], strict=True)]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_timezone(tz: str) -> str:
    """``tz`` if it is a known IANA time zone name, else ValueError with a readable message."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r} (use an IANA name such as UTC or Europe/Paris)") from None
    return tz


def parse_timestamps(values: pd.Series, tz: str) -> pd.Series:
    """ISO 8601 strings to UTC timestamps (NaT where empty or unparseable; see module docstring)."""
    s = values.astype("str") if values.dtype != "str" else values
    s = s.str.strip()
    present = values.notna().to_numpy()
    aware = (s.str.len() > 10) & s.str.contains(_OFFSET_RE, regex=True, na=False)
    aware = aware.to_numpy() & present
    naive = present & ~aware
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if aware.any():
        parsed = pd.to_datetime(s[aware], utc=True, format="ISO8601", errors="coerce")
        out[aware] = parsed.dt.as_unit("us")
    if naive.any():
        parsed = pd.to_datetime(s[naive], format="ISO8601", errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:  # pragma: no cover - defensive
            parsed = parsed.dt.tz_convert("UTC")
        else:
            parsed = parsed.dt.tz_localize(tz, ambiguous=np.ones(len(parsed), dtype=bool), nonexistent="shift_forward")
            parsed = parsed.dt.tz_convert("UTC")
        out[naive] = parsed.dt.as_unit("us")
    return out


def _norm_enum(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)


def _parse_column(df: pd.DataFrame, spec: ColumnSpec, file: str, tz: str) -> pd.Series:
    raw = df[spec.name]
    present = raw.notna().to_numpy()
    if spec.required and not present.all():
        raise HistoryError(file, spec.name, f"{int((~present).sum())} row(s) have no value in this required column", _examples(df, ~present, spec.name))
    if spec.kind in ("id", "text"):
        return raw.str.strip()
    if spec.kind in ("timestamp", "date"):
        ts = parse_timestamps(raw, tz)
        bad = present & ts.isna().to_numpy()
        if bad.any():
            what = "date" if spec.kind == "date" else "ISO 8601 timestamp"
            raise HistoryError(file, spec.name, f"{int(bad.sum())} value(s) are not a valid {what}", _examples(df, bad, spec.name))
        outside = present & ((ts < EARLIEST_TS) | (ts > LATEST_TS)).to_numpy()
        if outside.any():
            raise HistoryError(
                file, spec.name,
                f"{int(outside.sum())} value(s) outside {EARLIEST_DATE}..{LATEST_DATE} (a placeholder or mistyped date?); "
                "fix or remove those rows",
                _examples(df, outside, spec.name),
            )
        if spec.kind == "date":
            return ts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
        return ts
    if spec.kind == "number":
        num = pd.to_numeric(raw.str.strip(), errors="coerce")
        bad = present & ~np.isfinite(num.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            raise HistoryError(file, spec.name, f"{int(bad.sum())} value(s) are not numbers", _examples(df, bad, spec.name))
        huge = present & (num.abs() > MAX_MAGNITUDE).to_numpy()
        if huge.any():
            raise HistoryError(file, spec.name, f"{int(huge.sum())} value(s) larger than {MAX_MAGNITUDE:.0e} in magnitude", _examples(df, huge, spec.name))
        if spec.nonnegative:
            neg = (num < 0).to_numpy()
            if neg.any():
                raise HistoryError(file, spec.name, f"{int(neg.sum())} negative value(s); this column must be >= 0", _examples(df, neg, spec.name))
        return num.astype(float)
    if spec.kind == "bool":
        low = raw.str.strip().str.lower()
        is_true, is_false = low.isin(_TRUE).to_numpy(), low.isin(_FALSE).to_numpy()
        bad = present & ~is_true & ~is_false
        if bad.any():
            raise HistoryError(file, spec.name, f"{int(bad.sum())} value(s) are not true/false (also accepted: yes/no, 1/0, t/f, y/n)", _examples(df, bad, spec.name))
        out = pd.array(np.where(is_true, True, False), dtype="boolean")
        out[~present] = pd.NA
        return pd.Series(out, index=df.index)
    if spec.kind == "enum":
        norm = _norm_enum(raw)
        bad = present & ~norm.isin(spec.allowed).to_numpy()
        if bad.any():
            raise HistoryError(file, spec.name, f"{int(bad.sum())} unknown value(s); allowed: {', '.join(spec.allowed)}", _examples(df, bad, spec.name))
        return norm
    raise AssertionError(spec.kind)  # pragma: no cover


def _read_csv(path: Path, schema: FileSchema) -> tuple[pd.DataFrame, list[str]]:
    display = str(path)
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header_line = fh.readline()
    except UnicodeDecodeError:
        raise HistoryError(display, None, "not a UTF-8 text file") from None
    except OSError as exc:
        raise HistoryError(display, None, f"cannot read: {exc.strerror or exc}") from None
    if not header_line.strip():
        raise HistoryError(display, None, "the file is empty (no header line)")
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise HistoryError(display, None, f"cannot read the header: {exc}") from None
    names = {str(c).strip().lower(): c for c in header}
    missing = [c for c in schema.required if c not in names]
    if missing:
        hint = ""
        if len(header) == 1 and any(sep in str(header[0]) for sep in (";", "\t", "|")):
            hint = " (the file does not look comma-separated)"
        raise HistoryError(
            display, missing[0],
            f"required column missing{hint}; the file has columns: {', '.join(map(str, header))}",
        )
    wanted = [c.name for c in schema.columns if c.name in names]
    ignored = [str(c) for c in header if str(c).strip().lower() not in {c.name for c in schema.columns}]
    try:
        df = pd.read_csv(
            path,
            usecols=[names[c] for c in wanted],
            dtype=str,
            keep_default_na=False,
            na_values=NA_VALUES,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except UnicodeDecodeError:
        raise HistoryError(display, None, "not a UTF-8 text file") from None
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "malformed CSV"
        line = re.search(r"line (\d+)", msg)
        raise HistoryError(display, None, f"malformed CSV: {msg}", [(int(line.group(1)), "")] if line else None) from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    df["_line"] = np.arange(2, len(df) + 2, dtype=np.int64)
    blank = df[wanted].isna().all(axis=1)
    if blank.any():
        df = df[~blank.to_numpy()]
    if len(df) == 0:
        raise HistoryError(display, None, "the file has a header but no data rows")
    return df, ignored


def _check_span(ts: pd.Series, lines: pd.Series, file: str, column: str) -> None:
    """Refuse a file whose timestamps span more days than a scenario horizon can hold."""
    first, last = ts.min(), ts.max()
    days = (last - first) / pd.Timedelta(days=1)
    if days > MAX_SPAN_DAYS:
        at = [int(lines[ts.idxmin()]), int(lines[ts.idxmax()])]
        raise HistoryError(
            file, column,
            f"the rows span {days:,.0f} days ({first.date()} to {last.date()}); a calibrated scenario covers "
            f"at most {MAX_SPAN_DAYS:,} days: remove the stray rows or split the history",
            [(at[0], first.isoformat()), (at[1], last.isoformat())],
        )


def read_file(kind: str, path: str | Path, timezone: str = "UTC") -> tuple[pd.DataFrame, InputFile]:
    """Read and validate one history file (see the module docstring)."""
    schema = FILES[kind]
    path = Path(path)
    display = str(path)
    if not path.exists():
        raise HistoryError(display, None, f"{kind} file not found")
    if not path.is_file():
        raise HistoryError(display, None, "not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise HistoryError(
            display, None,
            f"the file is {size / 2**30:.2f} GiB, over the {MAX_FILE_BYTES / 2**30:.2f} GiB limit "
            "(split it by date, or raise the limit with the CXSIM_MAX_CSV_BYTES environment variable)",
        )
    if size == 0:
        raise HistoryError(display, None, "the file is empty (0 bytes)")
    raw, ignored = _read_csv(path, schema)
    rows_read = len(raw)
    out = pd.DataFrame(index=raw.index)
    for spec in schema.columns:
        if spec.name in raw.columns:
            out[spec.name] = _parse_column(raw, spec, display, timezone)
    cols = list(out.columns)
    out["_line"] = raw["_line"].to_numpy()
    # exact duplicate rows (every column equal once parsed: "…Z" and "…+00:00" are the same
    # instant) are export artefacts: keep the first
    dup = out.duplicated(subset=cols, keep="first").to_numpy()
    n_dup = int(dup.sum())
    if n_dup:
        out, raw = out[~dup], raw[~dup]
    if schema.key:
        keyed = out.duplicated(subset=list(schema.key), keep=False).to_numpy()
        if keyed.any():
            col = schema.key[0] if len(schema.key) == 1 else "+".join(schema.key)
            first_key = out.loc[keyed, list(schema.key)].iloc[0]
            same = (out[list(schema.key)] == first_key).all(axis=1).to_numpy()
            view = raw.assign(**{col: raw[list(schema.key)].astype(str).agg(" / ".join, axis=1)}) if len(schema.key) > 1 else raw
            n_ids = int(out.loc[keyed].drop_duplicates(subset=list(schema.key)).shape[0])
            raise HistoryError(
                display, col,
                f"{n_ids} id(s) appear on several rows with different values (exact duplicate rows are "
                "dropped, conflicting ones are an error)",
                _examples(view, same, col),
            )
    ts_cols = [c.name for c in schema.columns if c.kind == "timestamp" and c.name in out.columns]
    first = last = None
    if ts_cols:
        main = out[ts_cols[0]]
        _check_span(main, out["_line"], display, ts_cols[0])
        first, last = main.min().isoformat(), main.max().isoformat()
    info = InputFile(kind, display, sha256_file(path), size, rows_read, len(out), n_dup, first, last, ignored)
    return out.reset_index(drop=True), info


def read_history(
    orders: str | Path | None = None,
    contacts: str | Path | None = None,
    returns: str | Path | None = None,
    staffing: str | Path | None = None,
    timezone: str = "UTC",
) -> History:
    """Read and validate the given history files (at least one).

    Raises :class:`HistoryError` for the first problem found (see the module docstring); nothing
    is fitted until every file has passed.
    """
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise HistoryError("--timezone", None, str(exc)) from None
    given = {k: v for k, v in (("orders", orders), ("contacts", contacts), ("returns", returns), ("staffing", staffing)) if v is not None}
    if not given:
        raise HistoryError("(no input)", None, "give at least one of the orders, contacts, returns or staffing files")
    frames: dict[str, pd.DataFrame] = {}
    files: dict[str, InputFile] = {}
    notes: list[str] = []
    for kind, path in given.items():
        df, info = read_file(kind, path, timezone)
        frames[kind], files[kind] = df, info
        if info.duplicates_dropped:
            notes.append(f"{info.path}: dropped {info.duplicates_dropped} exact duplicate row(s)")
        if info.columns_ignored:
            notes.append(f"{info.path}: ignored column(s) {', '.join(info.columns_ignored)}")
    spans = [(pd.Timestamp(f.first), pd.Timestamp(f.last), f.path) for f in files.values() if f.first and f.last]
    if spans:
        lo, hi = min(spans), max(spans, key=lambda t: t[1])
        days = (hi[1] - lo[0]) / pd.Timedelta(days=1)
        if days > MAX_SPAN_DAYS:
            raise HistoryError(
                "(history)", None,
                f"the files together span {days:,.0f} days ({lo[0].date()} in {lo[2]} to {hi[1].date()} in {hi[2]}); "
                f"a calibrated scenario covers at most {MAX_SPAN_DAYS:,} days",
            )
    return History(
        frames.get("orders"), frames.get("contacts"), frames.get("returns"), frames.get("staffing"),
        timezone, files, notes,
    )


def schema_markdown() -> str:
    """The CSV schemas as Markdown tables (for the README and ``--help``)."""
    lines: list[str] = []
    for schema in FILES.values():
        lines.append(f"**{schema.name}.csv** — {schema.description}" + (f" Unique: {', '.join(schema.key)}." if schema.key else ""))
        lines.append("")
        lines.append("| column | required | type | meaning |")
        lines.append("|---|---|---|---|")
        for c in schema.columns:
            kind = c.kind + (f" ({' / '.join(c.allowed)})" if c.allowed else "") + (", >= 0" if c.nonnegative else "")
            lines.append(f"| `{c.name}` | {'yes' if c.required else 'no'} | {kind} | {c.description} |")
        lines.append("")
    return "\n".join(lines)
