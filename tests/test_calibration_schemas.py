"""History CSV validation (calibration.schemas): every bad input ends in one HistoryError naming the
file, the column and example rows with their line numbers; time zones are handled explicitly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from calibration import schemas
from calibration.schemas import FILES, HistoryError, read_history, schema_markdown

ORDERS = (
    "order_id,customer_id,order_ts,order_value,delivery_status\n"
    "O1,C1,2026-03-01T10:00:00Z,50.00,on_time\n"
    "O2,C2,2026-03-01 11:30:00,20.5,late\n"
    "O3,C1,2026-03-02T09:00:00+01:00,35,\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def error(**files: Path) -> HistoryError:
    with pytest.raises(HistoryError) as info:
        read_history(**files)
    return info.value


def test_valid_orders_are_typed_and_in_utc(tmp_path: Path) -> None:
    h = read_history(orders=write(tmp_path, "orders.csv", ORDERS))
    o = h.orders
    assert o is not None and len(o) == 3
    assert str(o["order_ts"].dt.tz) == "UTC"
    assert o["order_ts"].iloc[2] == pd.Timestamp("2026-03-02T08:00:00Z")  # +01:00 converted
    assert o["order_value"].tolist() == [50.0, 20.5, 35.0]
    assert o["delivery_status"].iloc[2] != o["delivery_status"].iloc[2]  # empty -> missing (NaN)
    assert h.files["orders"].rows == 3 and len(h.files["orders"].sha256) == 64


def test_naive_timestamps_are_local_time_of_the_timezone(tmp_path: Path) -> None:
    text = "order_id,customer_id,order_ts,order_value\nO1,C1,2026-07-01 12:00:00,10\nO2,C2,2026-07-01T10:00:00Z,10\n"
    h = read_history(orders=write(tmp_path, "o.csv", text), timezone="Europe/Paris")
    ts = h.orders["order_ts"]
    assert ts.iloc[0] == ts.iloc[1] == pd.Timestamp("2026-07-01T10:00:00Z")  # summer time: UTC+2
    assert h.local(ts).iloc[0] == pd.Timestamp("2026-07-01 12:00:00")


def test_mixed_offsets_for_the_same_instant_are_exact_duplicates(tmp_path: Path) -> None:
    text = ("order_id,customer_id,order_ts,order_value\n"
            "O1,C1,2026-03-01T10:00:00Z,10\nO1,C1,2026-03-01T11:00:00+01:00,10\nO1,C1,2026-03-01 10:00:00,10\nO2,C2,2026-03-01T10:00:00-0500,5\n")
    h = read_history(orders=write(tmp_path, "o.csv", text))
    assert len(h.orders) == 2
    assert h.files["orders"].duplicates_dropped == 2
    assert any("dropped 2 exact duplicate" in n for n in h.notes)
    assert h.orders["order_ts"].iloc[1] == pd.Timestamp("2026-03-01T15:00:00Z")


def test_extra_columns_are_ignored_and_headers_are_trimmed(tmp_path: Path) -> None:
    text = "\ufeff Order_ID ,customer_id,order_ts,order_value,utm_source\nO1,C1,2026-03-01T10:00:00Z,10,google\n"
    h = read_history(orders=write(tmp_path, "o.csv", text))
    assert list(h.orders.columns) == ["order_id", "customer_id", "order_ts", "order_value", "_line"]
    assert h.files["orders"].columns_ignored == ["utm_source"]


def test_missing_file(tmp_path: Path) -> None:
    e = error(orders=tmp_path / "nope.csv")
    assert "nope.csv" in str(e) and "not found" in str(e)


@pytest.mark.parametrize("text", ["", "order_id,customer_id,order_ts,order_value\n", "\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    e = error(orders=write(tmp_path, "orders.csv", text))
    assert ("orders.csv" in str(e) and "empty" in str(e)) or "no data rows" in str(e)


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    e = error(orders=write(tmp_path, "orders.csv", "order_id,customer_id,order_value\nO1,C1,5\n"))
    assert e.column == "order_ts"
    assert "orders.csv" in str(e) and "'order_ts'" in str(e) and "required column missing" in str(e)


def test_semicolon_files_get_a_hint(tmp_path: Path) -> None:
    e = error(orders=write(tmp_path, "orders.csv", "order_id;customer_id;order_ts;order_value\nO1;C1;2026-01-01;5\n"))
    assert "comma-separated" in str(e)


def test_unparseable_timestamps_name_column_and_rows(tmp_path: Path) -> None:
    text = ORDERS + "O4,C4,yesterday,5\nO5,C5,2026-02-30T10:00:00Z,5\nO6,C6,2026-03-03T25:00:00,5\nO7,C7,31/12/2026,5\n"
    e = error(orders=write(tmp_path, "orders.csv", text))
    assert e.column == "order_ts"
    assert [line for line, _ in e.examples] == [5, 6, 7]  # header is line 1; at most three examples
    msg = str(e)
    assert "orders.csv" in msg and "4 value(s) are not a valid ISO 8601 timestamp" in msg and "line 5: 'yesterday'" in msg


def test_required_value_missing(tmp_path: Path) -> None:
    e = error(orders=write(tmp_path, "orders.csv", ORDERS + "O4,,2026-03-02T09:00:00Z,5\n"))
    assert e.column == "customer_id" and e.examples == [(5, "")]


def test_negative_values(tmp_path: Path) -> None:
    e = error(orders=write(tmp_path, "orders.csv", ORDERS + "O4,C4,2026-03-02T09:00:00Z,-12.5\n"))
    assert e.column == "order_value" and "negative" in str(e) and "line 5: '-12.5'" in str(e)


def test_non_numeric_values(tmp_path: Path) -> None:
    e = error(orders=write(tmp_path, "orders.csv", ORDERS + "O4,C4,2026-03-02T09:00:00Z,$12\n"))
    assert e.column == "order_value" and "not numbers" in str(e)


def test_conflicting_duplicate_ids(tmp_path: Path) -> None:
    text = ORDERS + "O2,C9,2026-03-05T09:00:00Z,99\n"
    e = error(orders=write(tmp_path, "orders.csv", text))
    assert e.column == "order_id"
    assert "different values" in str(e)
    assert [line for line, _ in e.examples] == [3, 5] and all(v == "O2" for _, v in e.examples)


def test_unknown_enum_values(tmp_path: Path) -> None:
    e = error(orders=write(tmp_path, "orders.csv", ORDERS + "O4,C4,2026-03-02T09:00:00Z,5,stolen\n"))
    assert e.column == "delivery_status" and "stolen" in str(e) and "on_time" in str(e)
    contacts = "contact_id,created_ts,channel,reason\nK1,2026-03-01T10:00:00Z,Chat,wismo\nK2,2026-03-01T10:00:00Z,fax,wismo\n"
    e = error(contacts=write(tmp_path, "contacts.csv", contacts))
    assert e.column == "channel" and e.examples == [(3, "fax")]
    returns = "order_id,requested_ts,outcome\nO1,2026-03-05T10:00:00Z,Store Credit\nO2,2026-03-05T10:00:00Z,voucher\n"
    e = error(returns=write(tmp_path, "returns.csv", returns))
    assert e.column == "outcome" and e.examples == [(3, "voucher")]


def test_enum_values_are_case_and_separator_insensitive(tmp_path: Path) -> None:
    returns = "order_id,requested_ts,outcome\nO1,2026-03-05T10:00:00Z,Store Credit\nO2,2026-03-05T10:00:00Z,EXCHANGE\nO3,2026-03-05T10:00:00Z,store-credit\n"
    h = read_history(returns=write(tmp_path, "returns.csv", returns))
    assert h.returns["outcome"].tolist() == ["store_credit", "exchange", "store_credit"]


def test_bool_columns(tmp_path: Path) -> None:
    ok = "contact_id,created_ts,channel,reason,abandoned\nK1,2026-03-01T10:00:00Z,phone,wismo,yes\nK2,2026-03-01T10:00:00Z,phone,wismo,0\nK3,2026-03-01T10:00:00Z,phone,wismo,\n"
    h = read_history(contacts=write(tmp_path, "c.csv", ok))
    assert h.contacts["abandoned"].tolist()[:2] == [True, False] and pd.isna(h.contacts["abandoned"].iloc[2])
    e = error(contacts=write(tmp_path, "c2.csv", ok.replace("yes", "maybe")))
    assert e.column == "abandoned" and e.examples == [(2, "maybe")]


def test_too_large_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "orders.csv"
    with big.open("wb") as fh:  # a sparse 2 GiB file: instant, no disk used
        fh.truncate(2 * 2**30)
    e = error(orders=big)
    assert "orders.csv" in str(e) and "2.00 GiB" in str(e) and "1.00 GiB limit" in str(e)


def test_the_size_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "MAX_FILE_BYTES", 50)
    e = error(orders=write(tmp_path, "orders.csv", ORDERS))
    assert "limit" in str(e)


def test_unknown_timezone(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="unknown time zone 'Mars/Olympus'"):
        read_history(orders=write(tmp_path, "orders.csv", ORDERS), timezone="Mars/Olympus")


def test_no_file_given() -> None:
    with pytest.raises(HistoryError, match="at least one"):
        read_history()


def test_staffing_and_contacts_keys(tmp_path: Path) -> None:
    staffing = "interval_start,channel,agents\n2026-03-01T10:00:00Z,chat,3\n2026-03-01T10:00:00Z,chat,4\n"
    e = error(staffing=write(tmp_path, "staffing.csv", staffing))
    assert e.column == "interval_start+channel" and len(e.examples) == 2


def test_schema_markdown_lists_every_column() -> None:
    md = schema_markdown()
    for schema in FILES.values():
        assert f"**{schema.name}.csv**" in md
        for col in schema.columns:
            assert f"`{col.name}`" in md


# ----------------------------------------------------------------------------- date spans, magnitudes


def _orders_with(rows: list[str], n_normal: int = 2000) -> str:
    """A realistic orders file (n_normal rows over 2026) with ``rows`` slipped into the middle."""
    normal = [
        f"O{i},C{i % 700},2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:15:00Z,{10 + i % 90}.50,on_time"
        for i in range(n_normal)
    ]
    body = normal[: n_normal // 2] + rows + normal[n_normal // 2 :]
    return "order_id,customer_id,order_ts,order_value,delivery_status\n" + "\n".join(body) + "\n"


def test_placeholder_dates_among_normal_rows_are_refused_fast(tmp_path: Path) -> None:
    import time

    text = _orders_with(["X1,C1,1900-01-01T00:00:00Z,10,on_time", "X2,C2,9999-12-31T00:00:00Z,10,on_time"])
    path = write(tmp_path, "orders.csv", text)
    t0 = time.perf_counter()
    e = error(orders=path)
    assert time.perf_counter() - t0 < 10
    assert e.column == "order_ts" and "outside 1990-01-01..2100-12-31" in str(e)
    assert e.examples == [(1002, "1900-01-01T00:00:00Z"), (1003, "9999-12-31T00:00:00Z")]  # the lines


def test_a_history_longer_than_a_scenario_horizon_is_refused(tmp_path: Path) -> None:
    e = error(orders=write(tmp_path, "orders.csv", _orders_with(["X1,C1,1995-06-01T00:00:00Z,10,on_time"], 50)))
    assert e.column == "order_ts" and "span" in str(e) and "3,650 days" in str(e)
    assert e.examples[0] == (27, "1995-06-01T00:00:00+00:00")  # the stray row, by its line
    assert e.examples[1][1].startswith("2026-")  # and the latest normal one


def test_files_that_together_span_too_long_are_refused(tmp_path: Path) -> None:
    orders = write(tmp_path, "orders.csv", ORDERS)
    staffing = write(
        tmp_path, "staffing.csv", "interval_start,channel,agents\n2012-01-01T09:00:00Z,chat,3\n2012-01-01T09:30:00Z,chat,3\n"
    )
    e = error(orders=orders, staffing=staffing)
    assert "together span" in str(e) and "2012-01-01" in str(e) and "2026-03-02" in str(e)


def test_dates_at_the_edges_of_the_range_are_accepted(tmp_path: Path) -> None:
    text = "order_id,customer_id,order_ts,order_value\nO1,C1,2100-12-31T23:59:59Z,1\nO2,C1,2100-12-30T00:00:00Z,1\n"
    h = read_history(orders=write(tmp_path, "orders.csv", text))
    assert h.orders is not None and len(h.orders) == 2
    early = "order_id,customer_id,order_ts,order_value\nO1,C1,1990-01-01T00:00:00Z,1\n"
    assert read_history(orders=write(tmp_path, "early.csv", early)).orders is not None


def test_numbers_beyond_any_plausible_magnitude_are_refused(tmp_path: Path) -> None:
    text = ORDERS.replace("20.5", "1e300")
    e = error(orders=write(tmp_path, "orders.csv", text))
    assert e.column == "order_value" and "larger than 1e+09" in str(e) and e.examples == [(3, "1e300")]
