"""Rolling analytics as pure functions over pandas DataFrames.

The analytics role only collects rows; these functions turn them into the
numbers and series the charts show, so tests feed them hand-made frames.

Frames:
- ``orders``: one row per order seen: ``order_id``, ``created_at``,
  ``seen_at`` (unix seconds), ``total_cents``, ``item_count``.
- ``items``: one row per line item: ``order_id``, ``sku``, ``name``, ``quantity``, ``revenue_cents``.
- ``outcomes``: one row per payment outcome: ``order_id``, ``approved``,
  ``created_at``, ``processed_at``.

Revenue is the value of confirmed orders only: a declined order earned
nothing. An order counts as revenue once its confirmation has been read, in
the second analytics saw the order.
"""

from __future__ import annotations

import pandas as pd

ORDER_COLUMNS = ["order_id", "created_at", "seen_at", "total_cents", "item_count"]
ITEM_COLUMNS = ["order_id", "sku", "name", "quantity", "revenue_cents"]
OUTCOME_COLUMNS = ["order_id", "approved", "created_at", "processed_at"]


def _recent(frame: pd.DataFrame, column: str, now: float, window_s: float) -> pd.DataFrame:
    return frame[frame[column] > now - window_s]


def per_second(frame: pd.DataFrame, column: str, now: float, window_s: float, value: str | None = None) -> pd.Series:
    """Counts (or sums of ``value``) per whole second over the last ``window_s`` seconds.

    The index is how many seconds ago each second began (``window_s`` down
    to 1, oldest first), every second present, so a quiet second shows as 0
    rather than a gap. The current, unfinished second is left out: it would
    always look low.
    """
    end = int(now)
    seconds = range(end - int(window_s), end)
    recent = _recent(frame, column, end, window_s + 1)
    recent = recent[recent[column] < end]
    if recent.empty:
        series = pd.Series(0.0, index=list(seconds))
    else:
        buckets = recent[column].astype("int64")
        grouped = recent.groupby(buckets)[value].sum() if value else recent.groupby(buckets).size()
        series = grouped.reindex(list(seconds), fill_value=0).astype(float)
    series.index = [end - second for second in seconds]
    series.index.name = "seconds_ago"
    return series


def orders_per_second(orders: pd.DataFrame, now: float, window_s: float = 30) -> pd.Series:
    return per_second(orders, "seen_at", now, window_s)


def confirmed_orders(orders: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``orders`` whose payment was confirmed (each once, however many confirmations were read)."""
    if orders.empty or outcomes.empty:
        return orders.iloc[0:0]
    return orders[orders["order_id"].isin(outcomes.loc[outcomes["approved"].astype(bool), "order_id"])]


def revenue_per_second(orders: pd.DataFrame, outcomes: pd.DataFrame, now: float, window_s: float = 30) -> pd.Series:
    """Revenue (confirmed orders only) in currency units, not cents, per second the orders were seen."""
    return per_second(confirmed_orders(orders, outcomes), "seen_at", now, window_s, "total_cents") / 100.0


def basket_size(orders: pd.DataFrame) -> pd.Series:
    """Mean, median and max items per order."""
    if orders.empty:
        return pd.Series({"mean": 0.0, "median": 0.0, "max": 0.0})
    sizes = orders["item_count"]
    return pd.Series({"mean": float(sizes.mean()), "median": float(sizes.median()), "max": float(sizes.max())})


def top_items(items: pd.DataFrame, n: int = 5, outcomes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ``n`` best sellers by units, with their revenue.

    With ``outcomes``, only the items of confirmed orders count: a declined
    order sold nothing.
    """
    if outcomes is not None:
        items = items[items["order_id"].isin(outcomes.loc[outcomes["approved"].astype(bool), "order_id"])]
    if items.empty:
        return pd.DataFrame(columns=["name", "units", "revenue"]).rename_axis("sku")
    grouped = items.groupby("sku").agg(name=("name", "first"), units=("quantity", "sum"), revenue_cents=("revenue_cents", "sum"))
    grouped["revenue"] = grouped.pop("revenue_cents") / 100.0
    return grouped.sort_values(["units", "revenue"], ascending=False).head(n)


def decline_rate(outcomes: pd.DataFrame) -> float:
    """Share of payments declined (0 when none processed yet)."""
    if outcomes.empty:
        return 0.0
    return float(1.0 - outcomes["approved"].mean())


def latency_percentiles(seconds: pd.Series, percentiles: tuple[float, ...] = (0.5, 0.99)) -> dict[str, float]:
    """Percentiles of a latency series, in milliseconds, keyed ``p50``, ``p99``..."""
    keys = [f"p{round(p * 100)}" for p in percentiles]
    if seconds.empty:
        return {key: float("nan") for key in keys}
    values = seconds.quantile(list(percentiles)) * 1000.0
    return {key: float(value) for key, value in zip(keys, values)}


def confirmation_latency(outcomes: pd.DataFrame) -> dict[str, float]:
    """Order placed → payment processed, p50 and p99 in ms."""
    return latency_percentiles(outcomes["processed_at"] - outcomes["created_at"] if not outcomes.empty else pd.Series(dtype=float))


def summary(orders: pd.DataFrame, items: pd.DataFrame, outcomes: pd.DataFrame, now: float, window_s: float = 10) -> dict[str, float]:
    """The headline numbers of the dashboard (revenue: confirmed orders only)."""
    recent = _recent(orders, "seen_at", now, window_s)
    paid = confirmed_orders(orders, outcomes)
    paid_recent = _recent(paid, "seen_at", now, window_s)
    return {
        "orders": float(len(orders)),
        "revenue": float(paid["total_cents"].sum() / 100.0) if not paid.empty else 0.0,
        "orders_per_s": float(len(recent) / window_s),
        "revenue_per_s": float(paid_recent["total_cents"].sum() / 100.0 / window_s) if not paid_recent.empty else 0.0,
        "basket_mean": basket_size(orders)["mean"],
        "decline_rate": decline_rate(outcomes),
        **{f"confirm_{key}_ms": value for key, value in confirmation_latency(outcomes).items()},
    }
