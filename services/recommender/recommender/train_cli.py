"""`stocktrack train` / `python -m recommender train`: train, evaluate, register, maybe activate.

Reads daily bars from PostgreSQL (load them first with the CSV backfill), writes the report
(JSON) and equity chart (PNG) to --output-dir, stores the model in the registry, and activates
it only when it passes the gate (see recommender.gate: it must beat always-hold, the majority
class and the rule engine on out-of-sample balanced accuracy by a bootstrap-tested margin, and
buy-and-hold on the risk-adjusted return of its next-bar, after-cost backtest). `--force`
activates anyway and is recorded in the report and with the model.
Exit codes: 0 trained (activated or not), 2 bad arguments or no data.
"""

from __future__ import annotations

import argparse
import base64
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import redis as sync_redis
import structlog

from recommender.backtest import EXECUTIONS, SIDES, BacktestSpec
from recommender.dataset import build_dataset, load_daily_bars
from recommender.gate import GateConfig
from recommender.labels import LabelSpec
from recommender.model_factory import ALGORITHMS
from recommender.model_registry import (
    UNIVERSE,
    activate_model,
    announce_activation,
    new_model_id,
    save_model,
    scope_of,
)
from recommender.report_output import write_equity_chart, write_report_json
from recommender.rules_config import RulesConfigError, load_rules_config
from recommender.training import TrainConfig, run_training
from stocktrack_common.json_logging import configure_logging
from stocktrack_common.settings import CommonSettings, parse_symbol_list

log = structlog.get_logger(__name__)

# Training reads daily_bars: every model it makes is a model of daily bars.
DAILY = "1d"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stocktrack train", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", help="comma-separated symbols (default: every symbol in daily_bars)")
    parser.add_argument(
        "--universe",
        action="store_true",
        help="serve every symbol (scope '*'); default: the --symbols given, or every symbol without them",
    )
    parser.add_argument("--from", dest="start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    parser.add_argument("--to", dest="end", type=date.fromisoformat, help="last day (YYYY-MM-DD)")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="logistic_regression")
    parser.add_argument("--horizon", type=int, default=5, help="label horizon in bars (default 5)")
    parser.add_argument("--buy-threshold", type=float, default=0.02, help="forward return above -> buy")
    parser.add_argument("--sell-threshold", type=float, default=-0.02, help="forward return below -> sell")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--min-train-fraction", type=float, default=0.5, help="share of days before the first test fold"
    )
    parser.add_argument("--cost-bps", type=float, default=5.0, help="commission in bps of the amount traded")
    parser.add_argument(
        "--slippage-bps", type=float, default=2.0, help="slippage in bps of the amount traded"
    )
    parser.add_argument(
        "--execution",
        choices=EXECUTIONS,
        default="next_open",
        help="a signal of bar t trades at bar t+1's open or close (never t's own close)",
    )
    parser.add_argument("--side", choices=SIDES, default="long_flat", help="what a sell signal does")
    parser.add_argument(
        "--confidence", type=float, default=0.95, help="gate: one-sided bootstrap confidence (default 0.95)"
    )
    parser.add_argument(
        "--min-margin", type=float, default=0.0, help="gate: balanced-accuracy margin over each baseline"
    )
    parser.add_argument("--bootstrap-samples", type=int, default=2000, help="gate: bootstrap resamples")
    parser.add_argument(
        "--risk-measure", choices=("sharpe", "sortino"), default="sharpe", help="gate: vs buy-and-hold"
    )
    parser.add_argument(
        "--rules-config", type=Path, help="rules TOML for the rule baseline (default: shipped)"
    )
    parser.add_argument("--output-dir", type=Path, default=Path("artifacts/training"))
    parser.add_argument(
        "--force", action="store_true", help="activate even if the gate refuses (recorded in the report)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in CI logs)")
    return parser


def train(argv: list[str], settings: CommonSettings | None = None) -> dict[str, Any]:
    """Run a training; returns the report (with model id, activation and output paths)."""
    args = build_parser().parse_args(argv)
    settings = settings or CommonSettings()
    config = TrainConfig(
        algorithm=args.algorithm,
        label=LabelSpec(
            horizon=args.horizon, buy_threshold=args.buy_threshold, sell_threshold=args.sell_threshold
        ),
        folds=args.folds,
        min_train_fraction=args.min_train_fraction,
        backtest=BacktestSpec(
            execution=args.execution, side=args.side, cost_bps=args.cost_bps, slippage_bps=args.slippage_bps
        ),
        gate=GateConfig(
            confidence=args.confidence,
            min_margin=args.min_margin,
            bootstrap_samples=args.bootstrap_samples,
            risk_measure=args.risk_measure,
        ),
    )
    rules_config = load_rules_config(args.rules_config)
    symbols = parse_symbol_list(args.symbols) if args.symbols else None
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        bars = load_daily_bars(conn, symbols, args.start, args.end)
        if not bars:
            raise LookupError("no daily bars found: load history first (stocktrack backfill)")
        dataset = build_dataset(bars, config.label, rules_config)
        result = run_training(dataset, config, progress=not args.no_progress)
        model_id = new_model_id()
        scope = UNIVERSE if args.universe else scope_of(symbols)
        report = {
            "model_id": model_id,
            "bar_interval": DAILY,
            "scope": scope,
            **result.report,
            "rules_config": rules_config.model_dump(),
        }
        data = report["data"]
        out_dir: Path = args.output_dir
        passed = bool(report["gate"]["passed"])
        activate = passed or bool(args.force)
        report["activation"] = {
            "activated": activate,
            "gate_passed": passed,
            "forced": activate and not passed,
        }
        chart_path = write_equity_chart(
            result.equity_curves,
            out_dir / f"{model_id}.png",
            f"Out-of-sample equity, model {model_id} ({config.algorithm})",
            report,
        )
        save_model(
            conn,
            model_id=model_id,
            algorithm=config.algorithm,
            params=report["params"],
            library_versions=report["library_versions"],
            features=report["features"],
            label_spec=report["label_spec"],
            train_from=date.fromisoformat(data["train_from"]),
            train_to=date.fromisoformat(data["train_to"]),
            # The chart travels with the model so the dashboard can show it from any pod.
            metrics={
                "evaluation": report["evaluation"]["overall"],
                "backtest": report["backtest"],
                "gate": report["gate"],
                "activation": report["activation"],
                "equity_chart_png": base64.b64encode(chart_path.read_bytes()).decode(),
            },
            pipeline=result.pipeline,
            interval=DAILY,
            scope=scope,
        )
        if activate:
            activate_model(conn, model_id)
    if activate:
        url = settings.redis_url.get_secret_value()
        client: Any = (
            sync_redis.RedisCluster.from_url(url)
            if settings.redis_cluster
            else sync_redis.Redis.from_url(url)
        )
        try:
            report["activation"]["stream_entry"] = announce_activation(
                client, settings.stream_prefix, model_id
            )
        finally:
            client.close()
    report["outputs"] = {"report": str(out_dir / f"{model_id}.json"), "chart": str(chart_path)}
    write_report_json(report, Path(report["outputs"]["report"]))
    overall = report["evaluation"]["overall"]["metrics"]
    log.info(
        "training finished",
        model_id=model_id,
        scope=scope,
        activated=activate,
        forced=report["activation"]["forced"],
        gate=report["gate"]["verdict"],
        model_balanced_accuracy=round(overall["model"]["balanced_accuracy"], 4),
        rules_balanced_accuracy=round(overall["rules"]["balanced_accuracy"], 4),
        report=report["outputs"]["report"],
    )
    return report


def main(argv: list[str] | None = None) -> int:
    settings = CommonSettings()
    configure_logging("recommender-train", settings.log_level, settings.log_format)
    try:
        report = train(list(argv or []), settings)
    except (LookupError, RulesConfigError, ValueError) as exc:
        log.error("training failed", error=str(exc))
        return 2
    print(report["outputs"]["report"])
    return 0
